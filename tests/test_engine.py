from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import color as skcolor

from restorer import engine
from restorer.engine import Colouriser, guided_upsample, working_shape
from restorer.errors import ModelError


def _frames(n: int = 3, h: int = 48, w: int = 64) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (h, w), dtype=np.uint8) for _ in range(n)]


def test_working_shape_keeps_aspect() -> None:
    assert working_shape(576, 720, 160) == (160, 200)
    assert working_shape(1080, 1920, 160) == (160, 288)
    assert working_shape(48, 64, 160) == (48, 64)  # never upscales


def test_colourise_keeps_L_and_adds_colour(tiny_colouriser: Colouriser) -> None:
    frames = _frames()
    out = tiny_colouriser.colourise(frames)
    assert [o.shape for o in out] == [(48, 64, 3)] * 3
    for g, rgb in zip(frames, out, strict=True):
        lab = skcolor.rgb2lab(rgb)
        L_src = skcolor.rgb2lab(np.repeat(g[..., None], 3, -1))[..., 0]
        assert np.abs(lab[..., 0] - L_src).max() <= 1.0
        assert np.abs(lab[..., 1:]).mean() > 2.0  # not grey


def test_chroma_zero_gives_the_grey_back(tiny_colouriser: Colouriser) -> None:
    g = _frames(1)[0]
    out = tiny_colouriser.colourise([g], chroma=0.0)[0]
    assert np.abs(out.astype(int) - g[..., None]).max() <= 1


def test_guided_upsample_follows_luminance_edges() -> None:
    L = np.zeros((64, 64), np.float32)
    L[:, 32:] = 80.0
    L_small = L[::4, ::4].copy()
    ab_small = np.zeros((16, 16, 2), np.float32)
    ab_small[:, 8:] = 40.0  # colour only on the bright side
    up = guided_upsample(L, L_small, ab_small)
    assert up.shape == (64, 64, 2)
    assert np.abs(up[:, :31]).max() < 4.0 and (up[:, 33:] > 36.0).all()
    # Plain bilinear would smear colour across the edge; the guide keeps it sharp.


def test_guided_upsample_keeps_small_colour_detail() -> None:
    """A 2x2 patch of colour on flat L (lips, an eye at the working size) must survive:
    the filter's windows must be small enough not to average it away."""
    L = np.full((64, 64), 50.0, np.float32)
    ab_small = np.zeros((16, 16, 2), np.float32)
    ab_small[7:9, 7:9] = 40.0
    up = guided_upsample(L, L[::4, ::4].copy(), ab_small)
    assert up[28:36, 28:36].max() > 9.0  # radius 1 keeps 12 of 40; radius 2 kept 5


def test_tiling_matches_whole_frame(tiny_net_meta, monkeypatch) -> None:
    net, meta = tiny_net_meta
    col = Colouriser.from_net(net, meta, device="cpu")
    g = _frames(1, 160, 200)[0]
    whole = col.predict_ab_small([g])[0]
    monkeypatch.setattr(engine, "MAX_TILE_PIXELS", 96 * 96)
    tiled = col.predict_ab_small([g])[0]
    assert tiled.shape == whole.shape
    inner = np.s_[8:-8, 8:-8]
    assert np.abs(tiled[inner] - whole[inner]).mean() < 0.05 * np.abs(whole).mean() + 0.5


def test_out_of_memory_halves_batch_and_says_so(tiny_net_meta, monkeypatch) -> None:
    net, meta = tiny_net_meta
    warnings: list[str] = []
    col = Colouriser.from_net(net, meta, device="cpu", batch_size=8, on_warning=warnings.append)
    real = col._predict_chunk

    def fussy(chunk):
        if len(chunk) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(chunk)

    monkeypatch.setattr(col, "_predict_chunk", fussy)
    smalls = [col.to_working(f) for f in _frames(7)]
    out = col.predict_ab_small(smalls)
    assert len(out) == 7 and all(np.abs(a).mean() > 0 for a in out)
    assert col.batch_size == 2
    assert warnings == ["GPU out of memory; batch size lowered to 4",
                        "GPU out of memory; batch size lowered to 2"]


def test_out_of_memory_at_batch_one_raises_never_grey(tiny_net_meta, monkeypatch) -> None:
    net, meta = tiny_net_meta
    col = Colouriser.from_net(net, meta, device="cpu", batch_size=1)

    def always(chunk):
        raise torch.OutOfMemoryError("simulated")

    monkeypatch.setattr(col, "_predict_chunk", always)
    with pytest.raises(ModelError, match="out of memory even at batch size 1"):
        col.predict_ab_small([_frames(1)[0]])


def test_device_choice() -> None:
    assert engine.pick_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ModelError, match="no CUDA"):
            engine.pick_device("cuda")
    with pytest.raises(ModelError, match="unknown device"):
        engine.pick_device("tpu")


def test_nan_weights_are_caught(tiny_net_meta) -> None:
    net, meta = tiny_net_meta
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(float("nan"))
    col = Colouriser.from_net(net, meta, device="cpu")
    with pytest.raises(ModelError, match="non-finite"):
        col.colourise(_frames(1))


def test_onnx_backend_matches_torch(tiny_net_meta, tmp_path, monkeypatch) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    net, meta = tiny_net_meta
    ref = Colouriser.from_net(net, meta, device="cpu")
    fast = Colouriser.from_net(net, meta, device="cpu", backend="onnx")
    assert ref.backend == "torch" and fast.backend == "onnxruntime"
    smalls = [ref.to_working(f) for f in _frames(3, 50, 70)]
    for a, b in zip(ref.predict_ab_small(smalls), fast.predict_ab_small(smalls), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-3)
    assert list((tmp_path / "restorer" / "onnx").glob("*.onnx"))  # exported once, cached


# ---------------------------------------------------------------- the one call and its Look
class _CountingTable:
    """Stands in for ``GREY_TO_L``: counts lookups and the shapes they were made at."""

    def __init__(self, table: np.ndarray) -> None:
        self.table = table
        self.shapes: list[tuple[int, ...]] = []

    def __getitem__(self, index: np.ndarray) -> np.ndarray:
        self.shapes.append(np.shape(index))
        return self.table[index]

    def lookup(self, grey: np.ndarray) -> np.ndarray:
        """Stands in for ``grey_to_L`` (the same lookup through OpenCV)."""
        return self[grey]


@pytest.mark.parametrize("size, stabilise", [(32, 0.0), (32, 0.8), (None, 0.0)])
def test_one_call_looks_each_frame_L_up_once(tiny_colouriser: Colouriser, monkeypatch,
                                             size, stabilise) -> None:
    """L is computed once per frame and resolution, and handed to the stabiliser, the guided
    upsample and the merge rather than recomputed by each."""
    from restorer import temporal
    from restorer.color import GREY_TO_L
    from restorer.look import Look

    frames = _frames(3, 96, 128)
    look = Look(chroma=1.3, working_size=size, stabilise=stabilise)
    counted = _CountingTable(GREY_TO_L)
    monkeypatch.setattr(engine, "grey_to_L", counted.lookup)
    monkeypatch.setattr(temporal, "GREY_TO_L", counted)
    out = tiny_colouriser.colourise_frames(frames, look, tiny_colouriser.new_stabiliser(look))
    small = working_shape(96, 128, size or 32, tiny_colouriser.multiple)
    assert small == (32, 40)
    assert sorted(counted.shapes) == sorted([small] * 3 + [(96, 128)] * 3)
    assert [(o.ab.shape, o.rgb.shape) for o in out] == [((96, 128, 2), (96, 128, 3))] * 3


def test_one_call_without_scaling_looks_L_up_once(tiny_colouriser: Colouriser,
                                                  monkeypatch) -> None:
    from restorer.color import GREY_TO_L
    from restorer.look import Look

    counted = _CountingTable(GREY_TO_L)
    monkeypatch.setattr(engine, "grey_to_L", counted.lookup)
    tiny_colouriser.colourise_frames(_frames(2), Look(working_size=64))  # 48x64: no resize
    assert counted.shapes == [(48, 64), (48, 64)]


def test_one_call_keeps_the_source_L_at_any_look(tiny_colouriser: Colouriser) -> None:
    from restorer.look import Look

    frames = _frames(2, 96, 128)
    for look in (Look(chroma=1.6, working_size=32), Look(chroma=0.4, working_size=64)):
        for g, res in zip(frames, tiny_colouriser.colourise_frames(frames, look), strict=True):
            L_out = skcolor.rgb2lab(res.rgb)[..., 0]
            L_src = skcolor.rgb2lab(np.repeat(g[..., None], 3, -1))[..., 0]
            assert np.abs(L_out - L_src).max() <= 1.0
            assert np.abs(skcolor.rgb2lab(res.rgb)[..., 1:]).mean() > 1.0  # coloured


def test_working_size_comes_from_the_look_not_the_engine(tiny_colouriser: Colouriser) -> None:
    from restorer.look import Look

    g = _frames(1, 576, 720)[0]
    before = dict(vars(tiny_colouriser))
    for size in (160, 96, None, 160):
        p = tiny_colouriser.predict([g], Look(working_size=size))[0]
        expected = working_shape(576, 720, size or 32, tiny_colouriser.multiple)
        assert p.small.shape == p.L_small.shape == expected
        assert p.raw.shape == p.ab_small.shape == (*expected, 2)
    assert tiny_colouriser.working_shape(576, 720, Look(working_size=160)) == (160, 200)
    before.pop("last_infer_ms")
    after = dict(vars(tiny_colouriser))
    after.pop("last_infer_ms")
    assert after.keys() == before.keys() and all(after[k] is before[k] for k in before)


def test_stages_are_the_one_call(tiny_colouriser: Colouriser) -> None:
    from restorer.look import Look

    frames = _frames(3, 96, 128)
    look = Look(chroma=0.8, working_size=40)
    whole = tiny_colouriser.colourise_frames(frames, look)
    preds = tiny_colouriser.predict(frames, look)
    for w, p in zip(whole, preds, strict=True):
        f = tiny_colouriser.finish(p, look)
        np.testing.assert_array_equal(w.rgb, f.rgb)
        np.testing.assert_array_equal(
            tiny_colouriser.merge(p.grey, f.ab, look.chroma), f.rgb)  # the re-merge path


def test_known_raw_ab_skips_the_network(tiny_colouriser: Colouriser, monkeypatch) -> None:
    from restorer.look import Look

    frames = _frames(2, 96, 128)
    look = Look(working_size=32)
    first = tiny_colouriser.predict(frames, look)
    calls: list[int] = []
    real = tiny_colouriser._infer
    monkeypatch.setattr(tiny_colouriser, "_infer", lambda Ls: calls.append(len(Ls)) or real(Ls))
    again = tiny_colouriser.predict(frames, look, raw=[first[0].raw, None])
    assert calls == [1]  # only the frame without a known ab went through the network
    assert again[0].raw is first[0].raw
    # The other frame went through alone rather than in a batch of two: CPU convolution kernels
    # may sum in another order for another batch size, so the last float bit can differ.
    np.testing.assert_allclose(again[1].raw, first[1].raw, rtol=1e-5, atol=1e-4)


def test_a_stabilising_look_needs_its_state(tiny_colouriser: Colouriser) -> None:
    from restorer.look import Look

    look = Look(stabilise=0.5)
    with pytest.raises(ValueError, match="needs its own stabiliser state"):
        tiny_colouriser.predict(_frames(1), look)
    with pytest.raises(ValueError, match="needs its own stabiliser state"):
        tiny_colouriser.predict(_frames(1), look, Colouriser.new_stabiliser(Look(stabilise=0.9)))
    assert Colouriser.new_stabiliser(Look()) is None
    assert Colouriser.new_stabiliser(look).strength == 0.5


# ---------------------------------------------------------------- the model's normalisation
def _net_by_hand(net, grey: np.ndarray, divisor: float, offset: float, scale: float
                 ) -> np.ndarray:
    from restorer.color import GREY_TO_L

    x = GREY_TO_L[grey] / np.float32(divisor) + np.float32(offset)
    with torch.inference_mode():
        y = net(torch.from_numpy(x)[None, None])
    return (y.float() * scale).permute(0, 2, 3, 1)[0].numpy()


def test_scales_come_from_the_model_file(tiny_net_meta, tmp_path) -> None:
    from restorer.checkpoint import load_model, save_model

    net, meta = tiny_net_meta
    g = _frames(1, 32, 40)[0]
    default = Colouriser.from_net(net, meta).predict_ab_small([g])[0]
    np.testing.assert_array_equal(default, _net_by_hand(net, g, 50.0, -1.0, 110.0))  # as before

    meta.normalisation = {"L": [100.0, -0.5], "ab": 55.0}
    save_model(tmp_path / "other.safetensors", net, meta)
    net2, meta2 = load_model(tmp_path / "other.safetensors")
    assert meta2.normalisation == {"L": [100.0, -0.5], "ab": 55.0}
    other = Colouriser.from_net(net2, meta2).predict_ab_small([g])[0]
    np.testing.assert_array_equal(other, _net_by_hand(net, g, 100.0, -0.5, 55.0))
    assert np.abs(other - default).max() > 1.0

    meta.normalisation = {"L": [50.0, -1.0], "ab": 55.0}  # ab only: exactly half (x2 is exact)
    half = Colouriser.from_net(net, meta).predict_ab_small([g])[0]
    np.testing.assert_array_equal(half * 2, default)


def test_old_files_without_normalisation_keep_the_defaults(tiny_net_meta) -> None:
    import json

    from restorer.checkpoint import ModelMeta

    net, meta = tiny_net_meta
    g = _frames(1, 32, 40)[0]
    ref = Colouriser.from_net(net, meta).predict_ab_small([g])[0]
    data = json.loads(meta.to_json())
    del data["normalisation"]
    for m in (ModelMeta.from_json(json.dumps(data)),
              dataclasses_replace(meta, normalisation={}),
              dataclasses_replace(meta, normalisation={"L": [50, -1]})):
        np.testing.assert_array_equal(Colouriser.from_net(net, m).predict_ab_small([g])[0], ref)
    assert engine.normalisation(meta) == (50.0, -1.0, 110.0)


@pytest.mark.parametrize("norm", [{"L": 50.0}, {"L": [50.0]}, {"ab": "x"}, {"L": [0.0, -1.0]},
                                  {"ab": -110.0}, {"L": "50"}, ["L", 50.0]])
def test_unreadable_normalisation_is_a_model_error(tiny_net_meta, norm) -> None:
    net, meta = tiny_net_meta
    meta.normalisation = norm
    with pytest.raises(ModelError, match="normalisation") as info:
        Colouriser.from_net(net, meta)
    assert "\n" not in str(info.value) and "tiny-test" in str(info.value)


def dataclasses_replace(meta, **changes):
    import dataclasses

    return dataclasses.replace(meta, **changes)
