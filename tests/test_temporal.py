"""Temporal chroma stabilisation and the warp-error metric, on tiny generated clips."""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np
import pytest

from restorer.color import rgb8_to_lab
from restorer.media import FrameReader, VideoWriter, probe
from restorer.temporal import ChromaStabiliser, warp_error, warp_errors

W, H = 64, 48
FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


def _texture(seed: int = 0, w: int = W, h: int = H) -> np.ndarray:
    """A smooth random grey texture (something for the flow to hold on to)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(40, 220, (h // 8 + 2, w // 8 + 2), dtype=np.uint8)
    return cv2.resize(small, (w + 16, h + 16), interpolation=cv2.INTER_CUBIC)[8:8 + h, 8:8 + w]


def _static_colour_clip(path: Path, frames: int = 20) -> tuple[Path, np.ndarray]:
    """A static orange-tinted textured scene with film grain, lossless; returns its true ab."""
    rng = np.random.default_rng(1)
    tex = _texture().astype(np.float32) / 255
    rgb = np.clip(np.stack([tex * 1.0, tex * 0.6, tex * 0.25], -1) * 255, 0, 255).astype(np.uint8)
    w = VideoWriter(path, W, H, Fraction(25), codec="ffv1")
    for _ in range(frames):
        grain = rng.normal(0, 3, rgb.shape)
        w.write(np.clip(rgb + grain, 0, 255).astype(np.uint8))
    w.commit()
    return path, rgb8_to_lab(rgb)[..., 1:]


def _smooth_noise(rng: np.random.Generator, sigma: float) -> np.ndarray:
    field = rng.normal(0, sigma, (3, 4, 2)).astype(np.float32)
    return cv2.resize(field, (W, H), interpolation=cv2.INTER_CUBIC)


def _temporal_std(abs_: list[np.ndarray]) -> float:
    return float(np.std(np.stack(abs_), axis=0).mean())


def test_static_scene_known_colour_varies_less(tmp_path: Path, tiny_colouriser) -> None:
    clip, true_ab = _static_colour_clip(tmp_path / "static.mkv")
    greys = [g.copy() for _, g in FrameReader(probe(clip))]
    smalls = [tiny_colouriser.to_working(g) for g in greys]
    # A noisy tiny network: its (grain-sensitive) prediction plus per-frame colour flicker.
    rng = np.random.default_rng(2)
    net = tiny_colouriser.predict_ab_small(smalls)
    raw = [cv2.resize(a, (W, H)) + _smooth_noise(rng, 6.0) for a in net]
    stab = ChromaStabiliser(strength=0.8)
    out = [stab.process(g, a) for g, a in zip(greys, raw, strict=True)]
    assert stab.cuts == []
    assert _temporal_std(out[5:]) < 0.5 * _temporal_std(raw[5:])
    # No drift: over time the output stays centred on what the network said.
    assert np.abs(np.mean(out[5:], 0) - np.mean(raw[5:], 0)).mean() < 2.0

    # Same clip, the network replaced by the known colour plus flicker: the output is nearer
    # the true colour than the raw prediction, frame by frame.
    raw = [true_ab + _smooth_noise(rng, 6.0) for _ in greys]
    stab.reset()
    out = [stab.process(g, a) for g, a in zip(greys, raw, strict=True)]
    err_raw = np.mean([np.abs(a - true_ab).mean() for a in raw[5:]])
    err_out = np.mean([np.abs(a - true_ab).mean() for a in out[5:]])
    assert err_out < 0.7 * err_raw


def _two_colour_cut_clip(path: Path) -> Path:
    """0.6 s of a reddish pattern, then 0.6 s of a bluish one: a hard cut at frame 15."""
    size = f"s={W}x{H}:r=25:d=0.6"
    cmd = [FFMPEG, "-v", "error", "-y", "-f", "lavfi", "-i", f"color=c=0xC04020:{size}",
           "-f", "lavfi", "-i", f"color=c=0x2040E0:{size}",
           "-filter_complex", "[0:v][1:v]concat=n=2:v=1:a=0,noise=alls=12:allf=t[v]",
           "-map", "[v]", "-c:v", "ffv1", str(path)]
    subprocess.run(cmd, check=True)
    return path


def test_hard_cut_nothing_of_first_scene_after(tmp_path: Path) -> None:
    clip = _two_colour_cut_clip(tmp_path / "cut.mkv")
    info = probe(clip)
    greys = [g.copy() for _, g in FrameReader(info)]
    rgbs = [f.copy() for _, f in FrameReader(info, mode="rgb")]
    assert len(greys) == 30
    # The "network" knows each shot's colour exactly, with a little flicker.
    rng = np.random.default_rng(3)
    ab_a = rgb8_to_lab(rgbs[0])[..., 1:].mean((0, 1))
    ab_b = rgb8_to_lab(rgbs[-1])[..., 1:].mean((0, 1))
    raw = [np.broadcast_to(ab_a if t < 15 else ab_b, (H, W, 2)).astype(np.float32)
           + _smooth_noise(rng, 2.0) for t in range(30)]
    stab = ChromaStabiliser(strength=1.0)
    out = [stab.process(g, a) for g, a in zip(greys, raw, strict=True)]
    assert stab.cuts == [15]
    np.testing.assert_array_equal(out[15], raw[15])  # the first frame of a shot passes through
    for t in range(15, 30):
        # Every pixel is nearer the second colour than the first, by a wide margin.
        d_a = np.linalg.norm(out[t] - ab_a, axis=-1)
        d_b = np.linalg.norm(out[t] - ab_b, axis=-1)
        assert (d_b < 8.0).all() and (d_a > 40.0).all(), t


def test_new_object_takes_its_own_colour_at_once() -> None:
    """Where the warp cannot be trusted (an object appears), the history is not blended in."""
    g = _texture(4)
    lit = g.copy()
    lit[14:34, 22:42] = 250  # a bright card enters; no cut (most of the frame is unchanged)
    c1 = np.full((H, W, 2), (10.0, 40.0), np.float32)
    c2 = c1.copy()
    c2[14:34, 22:42] = (-40.0, -20.0)
    stab = ChromaStabiliser(strength=1.0)
    for _ in range(8):
        stab.process(g, c1)
    out = stab.process(lit, c2)
    assert stab.cuts == []
    inner = (slice(17, 31), slice(25, 39))
    np.testing.assert_allclose(out[inner], c2[inner], atol=2.0)
    np.testing.assert_allclose(out[:8], c1[:8], atol=1e-3)  # untouched area keeps its colour


def test_inputs_untouched_and_strength_zero() -> None:
    g = _texture()
    ab = np.random.default_rng(0).normal(0, 10, (H, W, 2)).astype(np.float32)
    g0, ab0 = g.copy(), ab.copy()
    stab = ChromaStabiliser(strength=0.7)
    stab.process(g, ab)
    out = stab.process(g, ab + 5)
    np.testing.assert_array_equal(g, g0)
    np.testing.assert_array_equal(ab, ab0)
    assert out.shape == (H, W, 2) and out.dtype == np.float32
    assert 0 < float((ab + 5 - out).mean()) < 5  # pulled towards the previous frame
    off = ChromaStabiliser(strength=0.0)
    for _ in range(3):
        np.testing.assert_array_equal(off.process(g, ab), ab)


def test_validation() -> None:
    with pytest.raises(ValueError, match="strength"):
        ChromaStabiliser(strength=1.5)
    stab = ChromaStabiliser()
    with pytest.raises(ValueError, match="uint8 grey"):
        stab.process(np.zeros((H, W), np.float32), np.zeros((H, W, 2), np.float32))
    with pytest.raises(ValueError, match="ab must have shape"):
        stab.process(np.zeros((H, W), np.uint8), np.zeros((H, W, 3), np.float32))
    with pytest.raises(ValueError, match="grey frames but"):
        warp_error([np.zeros((H, W), np.uint8)], [])


def test_warp_error_static_and_flicker() -> None:
    g = _texture()
    greys = [g] * 6
    const = [np.full((H, W, 2), 10.0, np.float32)] * 6
    assert warp_error(greys, const) == pytest.approx(0.0, abs=1e-4)
    flicker = [np.full((H, W, 2), 10.0 + (4.0 if t % 2 else -4.0), np.float32) for t in range(6)]
    assert warp_error(greys, flicker) == pytest.approx(8.0, abs=1e-3)


def test_warp_error_follows_motion() -> None:
    # The scene pans 2 px per frame; colour painted on the texture moves with it.
    big = _texture(5, W + 40, H)
    paint = cv2.GaussianBlur(big.astype(np.float32), (0, 0), 2)[..., None].repeat(2, -1) / 4
    greys = [big[:, 2 * t: 2 * t + W].copy() for t in range(8)]
    moving = [paint[:, 2 * t: 2 * t + W].copy() for t in range(8)]
    stuck = [paint[:, :W].copy() for _ in range(8)]
    assert warp_error(greys, moving) < 0.25 * warp_error(greys, stuck)


def test_warp_error_skips_cuts() -> None:
    a, b = _texture(1), 255 - _texture(2)
    greys = [a] * 8 + [b] * 8
    abs_ = [np.zeros((H, W, 2), np.float32)] * 8 + [np.full((H, W, 2), 50.0, np.float32)] * 8
    errs = warp_errors(greys, abs_)
    assert len(errs) == 15 and np.isnan(errs[7])
    assert warp_error(greys, abs_) == pytest.approx(0.0, abs=1e-4)


def test_render_with_stabilisation(tmp_path: Path, tiny_net_meta) -> None:
    """Export streams through the stabiliser: same frame count, L kept, steadier colour."""
    import torch

    from restorer.engine import Colouriser
    from restorer.look import Look
    from restorer.render import RenderJob, run

    class Flickery(torch.nn.Module):
        """A flickering network: the random net's colour, scaled into gamut (at the gamut edge,
        fitting would clamp every frame alike), plus fresh noise on every call."""

        def __init__(self, net: torch.nn.Module) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            smooth = torch.nn.functional.avg_pool2d(torch.randn_like(x[:, :1]), 5, 1, 2)
            return self.net(x) * 0.2 + 0.3 * smooth.repeat(1, 2, 1, 1)

    net, meta = tiny_net_meta
    tiny_colouriser = Colouriser.from_net(Flickery(net), meta, device="cpu", batch_size=4)

    clip, _ = _static_colour_clip(tmp_path / "static.mkv", frames=16)
    outs = {}
    for s in (0.0, 0.9):
        job = RenderJob(src=clip, dst=tmp_path / f"out{s}.mkv", codec="ffv1",
                        look=Look(stabilise=s), batch_size=4)
        outs[s] = [f.copy() for _, f in FrameReader(probe(run(job, colouriser=tiny_colouriser)),
                                                    mode="rgb")]
    assert len(outs[0.0]) == len(outs[0.9]) == 16
    src = [g.astype(np.int16) for _, g in FrameReader(probe(clip))]
    for s, frames in outs.items():
        L = [rgb8_to_lab(f)[..., 0] for f in frames]
        src_L = [rgb8_to_lab(np.repeat(g.astype(np.uint8)[..., None], 3, -1))[..., 0]
                 for g in src]
        assert max(np.abs(a - b).mean() for a, b in zip(L, src_L, strict=True)) < 1.5, s
    std = {s: _temporal_std([rgb8_to_lab(f)[..., 1:] for f in fr]) for s, fr in outs.items()}
    assert std[0.9] < 0.7 * std[0.0], std
