"""Shared fixtures: tiny generated clips and tiny random networks (the suite runs on 2 cores)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Qt must be told before PySide6 is first imported anywhere in the session: CI has no display.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# ONNX exports of the tests' throwaway models must not pile up in the user's real cache.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="restorer-test-cache-")

import pytest  # noqa: E402
import torch  # noqa: E402
from clips import FFMPEG, make_clip  # noqa: E402,F401

torch.set_num_threads(2)


@pytest.fixture
def clip_factory(tmp_path: Path):
    """Return ``make(name, **kwargs)`` writing clips into the test's tmp folder."""

    def make(name: str = "clip.mp4", **kwargs) -> Path:
        return make_clip(tmp_path / name, **kwargs)

    return make


@pytest.fixture
def grey_clip(tmp_path: Path) -> Path:
    """A 1 s, 25 fps, 64x48 black-and-white clip with an AAC audio track."""
    return make_clip(tmp_path / "grey.mp4", colour=False)


def tiny_model(seed: int = 0, base: int = 4, depth: int = 2):
    """A randomly initialised tiny U-Net and its metadata; outputs are far from grey."""
    from restorer.checkpoint import ModelMeta
    from restorer.nets.registry import build_net

    torch.manual_seed(seed)
    spec = {"arch": "unet", "base": base, "depth": depth}
    net = build_net(spec).eval()
    meta = ModelMeta(
        arch=net.spec() if hasattr(net, "spec") else spec,
        working_size=32,
        normalisation={"L": [50.0, -1.0], "ab": 110.0},
        training={"data": ["random init (tests)"]},
        metrics={},
        name="tiny-test",
        description="random tiny network for tests",
    )
    return net, meta


@pytest.fixture
def tiny_net_meta():
    return tiny_model()


@pytest.fixture
def tiny_colouriser(tiny_net_meta):
    from restorer.engine import Colouriser

    net, meta = tiny_net_meta
    return Colouriser.from_net(net, meta, device="cpu", batch_size=4)


@pytest.fixture
def tiny_model_file(tmp_path: Path, tiny_net_meta) -> Path:
    from restorer.checkpoint import save_model

    net, meta = tiny_net_meta
    path = tmp_path / "tiny.safetensors"
    save_model(path, net, meta)
    return path
