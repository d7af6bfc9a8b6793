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


def test_tiling_matches_whole_frame(tiny_net_meta, monkeypatch) -> None:
    net, meta = tiny_net_meta
    col = Colouriser.from_net(net, meta, device="cpu")
    col.working_size = 512
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
