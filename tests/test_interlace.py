"""Interlaced frames colourised field by field (restorer.interlace).

The test material is made here in numpy: a textured bright bar moving right over a textured dark
background, rendered at twice the frame rate (one progressive picture per field instant), then
woven top-first or bottom-first; the same pictures give the progressive version and the
reference a perfect field-rate colourisation is held to.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import pytest
import torch
from skimage import color as skcolor
from torch import nn

from restorer import interlace
from restorer.checkpoint import ModelMeta
from restorer.engine import Colouriser, Prediction
from restorer.interlace import (
    FieldOrder,
    bob,
    colourise_interlaced,
    field_evidence,
    finish_fields,
    measure_field_order,
    predict_fields,
    split_fields,
    weave_ab,
)
from restorer.look import Look

H, W = 96, 128


# ---------------------------------------------------------------- generated material
def _picture(t: float, speed: float = 4.0, bar: int = 16, h: int = H, w: int = W) -> np.ndarray:
    """The scene at time ``t`` (in field periods) as a progressive uint8 picture: the bar's left
    edge is at ``10 + speed * t``, with soft (sub-pixel) edges; both textures move with their
    surfaces (the background stays, the bar's texture travels with it)."""
    rng = np.random.default_rng(0)
    noise = cv2.GaussianBlur(rng.normal(0, 1, (h, 3 * w)).astype(np.float32), (0, 0), 2.0)
    tex = noise / np.float32(noise.std())
    x = np.arange(w, dtype=np.float32)[None, :]
    left = 10 + speed * t
    inside = np.clip(x - left + 0.5, 0, 1) * np.clip(left + bar - x + 0.5, 0, 1)
    shift = int(round(speed * t))
    fg = 190 + 15 * np.roll(tex[:, w:], shift, axis=1)[:, :w]
    img = (60 + 10 * tex[:, :w]) * (1 - inside) + fg * inside
    return np.round(np.clip(img, 0, 255)).astype(np.uint8)


def _weave(first: np.ndarray, second: np.ndarray, order: FieldOrder) -> np.ndarray:
    top, bottom = (first, second) if order == "tt" else (second, first)
    out = top.copy()
    out[1::2] = bottom[1::2]
    return out


def _instants(n: int, **kw: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    """Frame ``k``'s two field instants (``2k`` and ``2k + 1``) as progressive pictures."""
    return [(_picture(2 * k, **kw), _picture(2 * k + 1, **kw)) for k in range(n)]


def _interlaced(n: int, order: FieldOrder, **kw: Any) -> list[np.ndarray]:
    return [_weave(a, b, order) for a, b in _instants(n, **kw)]


def _progressive(n: int, **kw: Any) -> list[np.ndarray]:
    return [_picture(2 * k, **kw) for k in range(n)]


def _grain(frames: list[np.ndarray], sigma: float, seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.clip(f + rng.normal(0, sigma, f.shape), 0, 255).astype(np.uint8) for f in frames]


# ---------------------------------------------------------------- deterministic "networks"
def _meta(name: str) -> ModelMeta:
    return ModelMeta(arch={"arch": "synthetic", "depth": 2}, working_size=32,
                     normalisation={"L": [50.0, -1.0], "ab": 110.0},
                     training={"data": ["none (a fixed function)"]}, metrics={}, name=name,
                     description="deterministic stand-in for a network (tests)")


def _pointwise() -> nn.Module:
    """ab a fixed affine function of L: a 1x1 convolution."""
    net = nn.Conv2d(1, 2, 1)
    assert net.bias is not None
    with torch.no_grad():
        net.weight.copy_(torch.tensor([0.4, -0.3]).reshape(2, 1, 1, 1))
        net.bias.copy_(torch.tensor([0.1, 0.05]))
    return net


class _GhostColour(nn.Module):
    """Colours mid-grey, as a real network colours the half-bright ghost that a combed moving
    edge becomes at the working size (the bar is bright, the background dark: neither is
    mid-grey, so in a single field only the edge pixels are coloured)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = torch.exp(-torch.square(x / 0.25))
        return torch.cat([g * 0.6, g * -0.4], dim=1)


def _synthetic(kind: str) -> Colouriser:
    net = _pointwise() if kind == "pointwise" else _GhostColour()
    return Colouriser.from_net(net, _meta(kind), device="cpu")


def _comb(ab: np.ndarray) -> float:
    """Chroma combing: mean |ab[y] - (ab[y-1] + ab[y+1]) / 2|, a row against the mean of its
    two neighbours, which belong to the other field."""
    return float(np.abs(ab[1:-1] - (ab[:-2] + ab[2:]) * 0.5).mean())


def _reference(col: Colouriser, instants: list[tuple[np.ndarray, np.ndarray]], look: Look,
               order: FieldOrder) -> list[np.ndarray]:
    """The best an interlaced output can be: each field instant's full progressive picture
    colourised, each field's rows taken from its own instant."""
    out = []
    for a, b in instants:
        ra, rb = (c.ab for c in col.colourise_frames([a, b], look))
        out.append(weave_ab(ra, rb, order))
    return out


# ---------------------------------------------------------------- split, bob, weave
@pytest.mark.parametrize("h", [2, 3, 6, 7, 48, 49])
@pytest.mark.parametrize("parity", [0, 1])
def test_bob_keeps_the_field_rows_exactly(h: int, parity: int) -> None:
    grey = np.random.default_rng(h).integers(0, 256, (h, 20), dtype=np.uint8)
    up = bob(grey, parity)
    assert up.shape == grey.shape and up.dtype == np.uint8
    np.testing.assert_array_equal(up[parity::2], grey[parity::2])
    # A row between two of the field's lines is their rounded mean.
    f = grey[parity::2].astype(int)
    between = (f[:-1] + f[1:] + 1) // 2
    np.testing.assert_array_equal(up[parity + 1::2][: len(between)], between)


def test_bob_puts_the_lines_at_their_true_heights() -> None:
    """On a vertical ramp, the bobbed bottom field is the ramp itself (half a line lower than
    the top field's lines, not a resize of the field that would shift it by a quarter line)."""
    ramp = np.repeat((np.arange(49) * 5)[:, None], 8, axis=1).astype(np.uint8)
    for parity in (0, 1):
        up = bob(ramp, parity).astype(int)
        inner = slice(1, 48)  # the outermost row repeats the field's edge line
        np.testing.assert_array_equal(up[inner], ramp[inner])


@pytest.mark.parametrize("h", [2, 5, 48, 49])
@pytest.mark.parametrize("order", ["tt", "bb"])
def test_split_then_weave_gives_the_frame_back(h: int, order: FieldOrder) -> None:
    grey = np.random.default_rng(h).integers(0, 256, (h, 17), dtype=np.uint8)
    first, second = split_fields(grey, order)
    top, bottom = (first, second) if order == "tt" else (second, first)
    np.testing.assert_array_equal(top, bob(grey, 0))
    np.testing.assert_array_equal(bottom, bob(grey, 1))
    np.testing.assert_array_equal(weave_ab(first, second, order), grey)
    # Odd height: the top field has one line more.
    assert len(grey[0::2]) == (h + 1) // 2


@pytest.mark.parametrize("order", ["tt", "bb"])
def test_weave_ab_takes_each_field_rows_from_its_own_picture(order: FieldOrder) -> None:
    first = np.full((7, 5, 2), 1.0, np.float32)
    second = np.full((7, 5, 2), 2.0, np.float32)
    ab = weave_ab(first, second, order)
    top_value, bottom_value = (1.0, 2.0) if order == "tt" else (2.0, 1.0)
    assert ab.shape == (7, 5, 2) and ab.dtype == np.float32
    assert (ab[0::2] == top_value).all() and (ab[1::2] == bottom_value).all()


def test_bad_inputs_say_what_was_wrong() -> None:
    grey = np.zeros((6, 4), np.uint8)
    with pytest.raises(ValueError, match="field order"):
        split_fields(grey, "tb")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="uint8 grey"):
        split_fields(grey.astype(np.float32), "tt")
    with pytest.raises(ValueError, match="at least 2 rows"):
        bob(np.zeros((1, 4), np.uint8), 0)
    with pytest.raises(ValueError, match="parity"):
        bob(grey, 2)
    with pytest.raises(ValueError, match="one shape"):
        weave_ab(np.zeros((6, 4, 2)), np.zeros((5, 4, 2)), "tt")
    with pytest.raises(ValueError, match="at least 2 consecutive frames"):
        measure_field_order([grey])


# ---------------------------------------------------------------- the two stages
@pytest.mark.parametrize("h", [96, 97])
@pytest.mark.parametrize("order", ["tt", "bb"])
def test_L_is_exact_in_both_fields(tiny_colouriser: Colouriser, h: int, order: FieldOrder
                                   ) -> None:
    frames = _interlaced(2, order, h=h)
    for look in (Look(chroma=1.6, working_size=32), Look(chroma=0.5)):
        out = colourise_interlaced(tiny_colouriser, frames, look, order=order)
        for g, res in zip(frames, out, strict=True):
            assert res.rgb.shape == (h, W, 3) and res.ab.shape == (h, W, 2)
            lab = skcolor.rgb2lab(res.rgb)
            L_src = skcolor.rgb2lab(np.repeat(g[..., None], 3, -1))[..., 0]
            for parity in (0, 1):  # held field by field, as the engine holds a frame
                assert np.abs(lab[parity::2, :, 0] - L_src[parity::2]).max() <= 1.0
            assert np.abs(lab[..., 1:]).mean() > 1.0  # coloured
            # The ab kept is before the chroma strength: the engine's re-merge path applies.
            np.testing.assert_array_equal(tiny_colouriser.merge(g, res.ab, look.chroma), res.rgb)


@pytest.mark.parametrize("look", [Look(working_size=32), Look(working_size=96)])
def test_upsample_is_the_engines_finish_without_the_merge(tiny_colouriser: Colouriser,
                                                           look: Look) -> None:
    """finish_fields skips the engine's merge of each field (its RGB would be thrown away);
    the ab must stay what Colouriser.finish gives, scaled (32) or not (96)."""
    fp = predict_fields(tiny_colouriser, _interlaced(1, "tt"), look)[0]
    for p in (fp.first, fp.second):
        np.testing.assert_array_equal(Colouriser.upsample(p), tiny_colouriser.finish(p, look).ab)


def test_the_network_sees_each_field_in_time_order(tiny_colouriser: Colouriser,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    frames = _interlaced(3, "bb")
    seen: list[np.ndarray] = []
    runs: list[int] = []
    real_predict, real_infer = tiny_colouriser.predict, tiny_colouriser._infer

    def predict(greys: Sequence[np.ndarray], *args: Any, **kwargs: Any) -> list[Prediction]:
        seen.extend(greys)
        return real_predict(greys, *args, **kwargs)

    def infer(Ls: Sequence[np.ndarray]) -> list[np.ndarray]:
        runs.append(len(Ls))
        return real_infer(Ls)

    monkeypatch.setattr(tiny_colouriser, "predict", predict)
    monkeypatch.setattr(tiny_colouriser, "_infer", infer)
    preds = predict_fields(tiny_colouriser, frames, Look(working_size=32), order="bb")
    expected = [f for g in frames for f in (bob(g, 1), bob(g, 0))]  # bottom first
    assert len(seen) == len(expected) == 6
    for s, e in zip(seen, expected, strict=True):
        np.testing.assert_array_equal(s, e)
    assert sum(runs) == 2 * len(frames)  # two network runs per frame
    for p, g in zip(preds, frames, strict=True):
        assert p.grey is g and p.order == "bb"
        np.testing.assert_array_equal(p.first.grey, bob(g, 1))
        np.testing.assert_array_equal(p.second.grey, bob(g, 0))


def test_stages_are_the_one_call(tiny_colouriser: Colouriser) -> None:
    frames = _interlaced(2, "tt")
    look = Look(chroma=0.8, working_size=40)
    whole = colourise_interlaced(tiny_colouriser, frames, look, order="tt")
    staged = [finish_fields(p, look) for p in predict_fields(tiny_colouriser, frames, look)]
    for w, s in zip(whole, staged, strict=True):
        np.testing.assert_array_equal(w.rgb, s.rgb)
        np.testing.assert_array_equal(w.ab, s.ab)


def test_the_stabiliser_sees_one_stream_at_twice_the_frame_rate(tiny_colouriser: Colouriser
                                                               ) -> None:
    """Batches of woven frames through predict_fields with one stabiliser are the same as the
    fields, in time order, through Colouriser.predict in one go."""
    frames = _interlaced(4, "tt", speed=1.0)
    look = Look(working_size=32, stabilise=0.8)
    stab = tiny_colouriser.new_stabiliser(look)
    assert stab is not None
    got = [p for batch in (frames[:1], frames[1:3], frames[3:])
           for p in predict_fields(tiny_colouriser, batch, look, stab, "tt")]
    assert stab.frames == 8 and stab.cuts == []
    # The bobbed fields sit at their true heights, so the flow trusts its field-to-field match.
    assert stab.last_confidence > 0.5
    ref_stab = tiny_colouriser.new_stabiliser(look)
    fields = [f for g in frames for f in split_fields(g, "tt")]
    ref = tiny_colouriser.predict(fields, look, ref_stab)
    ours = [q for p in got for q in (p.first, p.second)]
    for a, b in zip(ours, ref, strict=True):
        np.testing.assert_allclose(a.ab_small, b.ab_small, rtol=1e-5, atol=1e-4)
    # Stabilised and raw differ once there is history: the stabiliser did run.
    assert np.abs(ours[-1].ab_small - ours[-1].raw).max() > 0
    out = [finish_fields(p, look) for p in got]
    assert all(np.isfinite(o.ab).all() for o in out)


# ---------------------------------------------------------------- colour on moving edges
@pytest.mark.parametrize("kind", ["pointwise", "ghost", "tiny"])
@pytest.mark.parametrize("order", ["tt", "bb"])
def test_each_field_gets_the_colour_of_its_own_instant(
        kind: str, order: FieldOrder, tiny_net_meta: tuple[nn.Module, ModelMeta]) -> None:
    """Against a field-rate reference (each field instant's full picture colourised alone),
    the field-by-field output is near exact, in value and in how much its ab alternates row by
    row, and colourising the woven frames is not. A pointwise map of L is what the guided
    upsampling rebuilds best, so woven frames come closest there; a network that reacts to the
    ghost of a combed edge (as real ones do) is far off."""
    worst_ratio = {"pointwise": 0.5, "ghost": 0.05, "tiny": 0.15}[kind]
    if kind == "tiny":
        net, meta = tiny_net_meta
        col = Colouriser.from_net(net, meta, device="cpu")
    else:
        col = _synthetic(kind)
    look = Look(working_size=32)
    instants = _instants(2, speed=6.0)
    frames = [_weave(a, b, order) for a, b in instants]
    ref = _reference(col, instants, look, order)
    aware = [c.ab for c in colourise_interlaced(col, frames, look, order=order)]
    naive = [c.ab for c in col.colourise_frames(frames, look)]
    for r, a, n in zip(ref, aware, naive, strict=True):
        err_aware, err_naive = np.abs(a - r).mean(), np.abs(n - r).mean()
        assert err_aware < worst_ratio * err_naive, (err_aware, err_naive)
        comb_off_aware = abs(_comb(a) - _comb(r))
        comb_off_naive = abs(_comb(n) - _comb(r))
        assert comb_off_aware < 0.1 * comb_off_naive + 1e-3, (comb_off_aware, comb_off_naive)


def test_no_chroma_combing_on_a_moving_edge() -> None:
    """A fast moving edge, woven: at the working size the two fields' edges blend into a
    mid-grey ghost, which the network colours, and the guided upsampling, following the combed
    L, makes that colour alternate row by row. Field by field there is no ghost: the output
    alternates no more than the field-rate reference (which must, where the bar moved)."""
    col = _synthetic("ghost")
    look = Look(working_size=32)
    instants = _instants(2, speed=8.0)
    frames = [_weave(a, b, "tt") for a, b in instants]
    ref = _reference(col, instants, look, "tt")
    aware = [c.ab for c in colourise_interlaced(col, frames, look, order="tt")]
    naive = [c.ab for c in col.colourise_frames(frames, look)]
    for g, r, a, n in zip(frames, ref, aware, naive, strict=True):
        assert _comb(a) <= 1.02 * _comb(r) + 0.01
        assert _comb(n) > 2.0 * _comb(a)
        # Each field's own picture is smooth: the combing is all between the fields.
        fields = col.colourise_frames(list(split_fields(g, "tt")), look)
        assert max(_comb(f.ab) for f in fields) < 0.2 * _comb(a)


# ---------------------------------------------------------------- measuring the field order
@pytest.mark.parametrize("speed", [0.5, 2.0, 6.0])
@pytest.mark.parametrize("order", ["tt", "bb"])
def test_measure_finds_the_field_order(order: FieldOrder, speed: float) -> None:
    assert measure_field_order(_interlaced(5, order, speed=speed)) == order


@pytest.mark.parametrize("order", ["tt", "bb"])
def test_measure_finds_the_field_order_through_grain(order: FieldOrder) -> None:
    assert measure_field_order(_grain(_interlaced(5, order), sigma=4.0)) == order


@pytest.mark.parametrize("speed", [0.5, 2.0, 6.0])
def test_progressive_motion_is_progressive(speed: float) -> None:
    frames = _progressive(5, speed=speed)
    assert measure_field_order(frames) == "progressive"
    assert measure_field_order(_grain(frames, sigma=4.0)) == "progressive"
    ev = field_evidence(frames)
    assert ev.moving_pairs == 4 and abs(ev.asymmetry) < 0.02 and ev.combing < 1.0


def test_progressive_segmented_frames_are_progressive() -> None:
    """Film carried as interlaced video (both fields from one instant) has no combing to undo:
    it is progressive whatever the flags say."""
    frames = [_weave(p, p, "tt") for p in _progressive(5, speed=4.0)]
    assert measure_field_order(frames) == "progressive"


def test_a_still_picture_is_progressive() -> None:
    # Fine detail at the line rate (a still interlaced picture's) must not pass for combing.
    still = _weave(_picture(0), _picture(0), "tt")
    still[::2, :40] = 40
    still[1::2, :40] = 200
    assert measure_field_order([still] * 5) == "progressive"
    assert field_evidence([still] * 5).moving_pairs == 0
    assert measure_field_order(_grain([still] * 5, sigma=4.0)) == "progressive"


def test_a_scene_cut_does_not_outvote_the_motion() -> None:
    frames = _interlaced(6, "bb")
    frames[3:] = [255 - f for f in frames[3:]]  # a cut between frames 2 and 3
    assert measure_field_order(frames) == "bb"


def test_the_measure_thresholds_leave_a_margin() -> None:
    """The decision's constants sit well away from what the generated material measures."""
    tt = field_evidence(_interlaced(5, "tt", speed=0.5))
    prog = field_evidence(_grain(_progressive(5), sigma=4.0))
    assert tt.asymmetry > 3 * interlace.MIN_ASYMMETRY and tt.combing > 3 * interlace.MIN_COMBING
    assert abs(prog.asymmetry) < 0.2 * interlace.MIN_ASYMMETRY
    # Heavy grain nears the combing gate (pure grain scores 1); the asymmetry gate, which
    # grain cannot pass, is the one with the margin.
    assert prog.combing < interlace.MIN_COMBING
