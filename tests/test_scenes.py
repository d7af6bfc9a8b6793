"""Scene-cut detection: known cuts in generated clips, no false cuts on a slow pan, the CLI."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest

from restorer.errors import Cancelled, RestorerError
from restorer.scenes import CutDetector, detect_cuts, scan

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()

W, H, FPS = 64, 48, 25


def _lavfi_concat(path: Path, sources: list[str], vf: str | None = None) -> Path:
    cmd = [FFMPEG, "-v", "error", "-y"]
    for src in sources:
        cmd += ["-f", "lavfi", "-i", src]
    graph = "".join(f"[{i}:v]" for i in range(len(sources))) + f"concat=n={len(sources)}:v=1:a=0"
    if vf:
        graph += f",{vf}"
    cmd += ["-filter_complex", graph + "[v]", "-map", "[v]", "-c:v", "libx264", "-preset",
            "ultrafast", "-pix_fmt", "yuv420p", str(path)]
    subprocess.run(cmd, check=True)
    return path


@pytest.fixture(scope="module")
def cut_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four 1 s shots at 25 fps: cuts at frames 25, 50 and 75."""
    d = tmp_path_factory.mktemp("scenes")
    size = f"s={W}x{H}:r={FPS}:d=1"
    return _lavfi_concat(d / "cuts.mp4", [
        f"testsrc2={size}",
        f"smptebars={size}",
        f"color=c=0x103060:{size}",
        f"testsrc={size}",
    ])


def test_finds_known_cuts(cut_clip: Path) -> None:
    assert detect_cuts(cut_clip) == [25, 50, 75]


def test_range_and_progress(cut_clip: Path) -> None:
    events = list(scan(cut_clip, start=30, end=100, every=20))
    assert [e.done for e in events] == [20, 40, 60, 70]
    assert events[-1].cuts == [50, 75]
    assert events[-1].fraction == 1.0


def test_cancel(cut_clip: Path) -> None:
    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled):
        list(scan(cut_clip, every=10, cancel=stop))


def test_no_false_cuts_on_slow_pan(tmp_path: Path) -> None:
    # A 3 s pan at 20 px/s across a larger, itself moving, test pattern.
    clip = _lavfi_concat(tmp_path / "pan.mp4", [f"testsrc2=s=256x{H}:r={FPS}:d=3"],
                         vf=f"crop={W}:{H}:'t*20':0")
    assert detect_cuts(clip) == []


def test_flash_gives_at_most_one_cut() -> None:
    rng = np.random.default_rng(0)
    scene = rng.integers(40, 120, (H, W), dtype=np.uint8)
    det = CutDetector()
    flags = []
    for t in range(30):
        frame = np.full((H, W), 250, np.uint8) if t == 10 else scene
        flags.append(det.update(frame))
    assert sum(flags) <= 1
    assert not any(flags[:10])


def test_detector_reset_and_validation() -> None:
    det = CutDetector(min_shot=1)
    a = np.full((H, W), 30, np.uint8)
    b = np.full((H, W), 200, np.uint8)
    assert det.update(a) is False  # the first frame is never a cut
    assert det.update(a) is False
    assert det.update(b) is True
    det.reset()
    assert det.update(a) is False  # after reset: a new stream
    with pytest.raises(ValueError, match="uint8 grey"):
        det.update(np.zeros((H, W, 3), np.uint8))
    with pytest.raises(RestorerError, match="threshold"):
        CutDetector(threshold=0.0)


def test_cli_json_and_text(cut_clip: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from restorer.cli import main

    assert main(["scenes", str(cut_clip), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [c["frame"] for c in out["cuts"]] == [25, 50, 75]
    assert out["cuts"][0]["timecode"] == "00:00:01:00"
    assert main(["scenes", str(cut_clip)]) == 0
    lines = capsys.readouterr().out.split("\n")
    assert lines[:3] == ["25\t00:00:01:00", "50\t00:00:02:00", "75\t00:00:03:00"]


def test_cli_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from restorer.cli import main

    assert main(["scenes", str(tmp_path / "nope.mp4")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("restorer: error:") and err.count("\n") == 1
