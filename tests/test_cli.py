"""The colourize command: one-line errors, non-zero exit codes, nothing lost; Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from restorer import __version__
from restorer.cli import main
from restorer.media import probe
from restorer.positions import parse_position, to_frame


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "restorer.cli", *args], capture_output=True,
                          text=True, timeout=120)


def test_version() -> None:
    assert cli("--version").stdout.strip() == f"restorer {__version__}"


def test_colourize_writes_master(grey_clip: Path, tmp_path: Path, tiny_model_file: Path,
                                 capsys) -> None:
    out = tmp_path / "out.mp4"
    rc = main(["colourize", str(grey_clip), "-o", str(out), "--model", str(tiny_model_file),
               "--device", "cpu", "--quiet", "--chroma", "1.5"])
    assert rc == 0
    assert probe(out).frame_count == probe(grey_clip).frame_count
    assert "wrote" in capsys.readouterr().err


def _bad_inputs(tmp: Path, clip: Path) -> dict[str, Path]:
    text = tmp / "notes.mp4"
    text.write_text("this is a text file")
    cut = tmp / "cut.mp4"
    data = clip.read_bytes()
    cut.write_bytes(data[: len(data) // 3])
    empty = tmp / "empty.y4m"
    empty.write_bytes(b"YUV4MPEG2 W64 H48 F25:1 Ip A1:1 C420jpeg\n")
    audio = tmp / "audio.m4a"
    from clips import FFMPEG

    subprocess.run([FFMPEG, "-v", "error", "-f", "lavfi", "-i", "sine=duration=0.3", str(audio)],
                   check=True)
    return {"missing": tmp / "absent.mp4", "text": text, "truncated": cut, "zero-frames": empty,
            "audio-only": audio}


@pytest.mark.parametrize("case", ["missing", "text", "truncated", "zero-frames", "audio-only"])
def test_bad_input_gives_one_line_and_nonzero(case: str, grey_clip: Path, tmp_path: Path,
                                              tiny_model_file: Path) -> None:
    src = _bad_inputs(tmp_path, grey_clip)[case]
    before = sorted(p.name for p in tmp_path.iterdir())
    r = cli("colourize", str(src), "-o", str(tmp_path / "o.mp4"), "--model", str(tiny_model_file))
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("restorer: error: "), r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize("case", ["missing", "corrupt"])
def test_bad_model_one_line(case: str, grey_clip: Path, tmp_path: Path) -> None:
    model = tmp_path / "m.safetensors"
    if case == "corrupt":
        model.write_bytes(os.urandom(2000))
    r = cli("colourize", str(grey_clip), "-o", str(tmp_path / "o.mp4"), "--model", str(model))
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) >= 1
    assert r.stderr.strip().splitlines()[-1].startswith("restorer: error: ")
    assert "Traceback" not in r.stderr and not (tmp_path / "o.mp4").exists()


def test_same_output_as_input(grey_clip: Path, tiny_model_file: Path) -> None:
    before = grey_clip.read_bytes()
    r = cli("colourize", str(grey_clip), "-o", str(grey_clip), "--overwrite",
            "--model", str(tiny_model_file))
    assert r.returncode == 1 and "refusing to overwrite the input" in r.stderr
    assert grey_clip.read_bytes() == before


def test_ctrl_c_mid_export(clip_factory, tmp_path: Path, tiny_model_file: Path) -> None:
    src = clip_factory("long.mp4", size=(320, 240), seconds=20.0, colour=False)
    out = tmp_path / "o.mp4"
    proc = subprocess.Popen(
        [sys.executable, "-m", "restorer.cli", "colourize", str(src), "-o", str(out),
         "--model", str(tiny_model_file), "--batch", "1", "--size", "240"],
        stderr=subprocess.PIPE, start_new_session=True)
    assert proc.stderr is not None
    fd = proc.stderr.fileno()
    os.set_blocking(fd, False)
    seen = b""
    deadline = time.monotonic() + 60
    while b"frame/s" not in seen and time.monotonic() < deadline and proc.poll() is None:
        try:
            seen += os.read(fd, 65536)
        except BlockingIOError:
            time.sleep(0.05)
    assert proc.poll() is None, "export finished before it could be interrupted"
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole process group
    rc = proc.wait(timeout=30)
    os.set_blocking(fd, True)
    seen += proc.stderr.read()
    assert rc == 130, seen.decode("utf-8", "replace")[-800:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.mp4", "tiny.safetensors"]


def test_ctrl_c_inside_a_library_that_swallows_it(grey_clip: Path, tmp_path: Path,
                                                  tiny_model_file: Path, monkeypatch,
                                                  capsys) -> None:
    """Ctrl-C while library code runs that swallows KeyboardInterrupt and carries on: the
    export must still stop, exit 130 and leave nothing behind."""
    from restorer.engine import Colouriser

    real_load = Colouriser.load

    def load_swallowing_interrupts(*args, **kwargs):
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)
        except BaseException:  # noqa: BLE001 - what such a library does
            pass
        return real_load(*args, **kwargs)

    monkeypatch.setattr(Colouriser, "load", load_swallowing_interrupts)
    out = tmp_path / "o.mp4"
    assert main(["colourize", str(grey_clip), "-o", str(out), "--model", str(tiny_model_file),
                 "--quiet"]) == 130
    assert "cancelled" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grey.mp4", "tiny.safetensors"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored


@pytest.mark.parametrize("text, fps, frame", [
    ("250", 25.0, 250), ("10s", 25.0, 250), ("1:02.5", 24.0, 1500), ("00:00:02:12", 25.0, 62),
    ("00:01:00", 30000 / 1001, 1798),
])
def test_positions(text: str, fps: float, frame: int) -> None:
    assert to_frame(parse_position(text), fps) == frame
