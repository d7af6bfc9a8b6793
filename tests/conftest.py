"""Shared fixtures: tiny generated clips and tiny random networks, so the suite runs on 2 CPU cores."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

# Qt must be told before PySide6 is first imported anywhere in the session: CI has no display.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import imageio_ffmpeg  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(2)

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


def make_clip(
    path: Path,
    *,
    size: tuple[int, int] = (64, 48),
    seconds: float = 1.0,
    fps: str = "25",
    audio: bool = True,
    audio_streams: int = 1,
    colour: bool = True,
    codec: str = "libx264",
    pix_fmt: str | None = None,
    extra: Sequence[str] = (),
) -> Path:
    """Generate a small test clip with ffmpeg's lavfi sources.

    ``testsrc2`` moves every frame, so frames are distinguishable; ``colour=False`` makes it grey.
    """
    w, h = size
    vf = [] if colour else ["format=gray"]
    if w % 2 or h % 2:  # testsrc2 rounds odd sizes down to even
        vf.insert(0, f"scale={w}:{h}")
    cmd = [FFMPEG, "-v", "error", "-y", "-f", "lavfi", "-i",
           f"testsrc2=size={w + w % 2}x{h + h % 2}:rate={fps}:duration={seconds}"]
    for k in range(audio_streams if audio else 0):
        cmd += ["-f", "lavfi", "-i", f"sine=frequency={440 * (k + 1)}:duration={seconds}"]
    cmd += ["-map", "0:v"]
    for k in range(audio_streams if audio else 0):
        cmd += ["-map", f"{k + 1}:a"]
    if vf:
        cmd += ["-vf", ",".join(vf)]
    cmd += ["-c:v", codec]
    if codec == "libx264":
        cmd += ["-preset", "ultrafast", "-g", "12"]
    if pix_fmt:
        cmd += ["-pix_fmt", pix_fmt]
    elif codec == "libx264":
        cmd += ["-pix_fmt", "yuv444p" if (w % 2 or h % 2) else "yuv420p"]
    if audio:
        cmd += ["-c:a", "aac" if path.suffix in (".mp4", ".mov") else "pcm_s16le"]
    cmd += [*extra, str(path)]
    subprocess.run(cmd, check=True)
    return path


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
