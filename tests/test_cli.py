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


@pytest.mark.parametrize("args", [["--version"], ["colourize", "--help"], ["--help"]])
def test_quick_answers_import_no_heavy_library(args: list[str]) -> None:
    """--version and help must answer at once: torch, OpenCV and Qt stay unloaded."""
    code = ("import sys\nfrom restorer.cli import main\ntry:\n    main(sys.argv[1:])\n"
            "except SystemExit:\n    pass\n"
            "heavy = sorted({m.split('.')[0] for m in sys.modules} & "
            "{'torch', 'cv2', 'PySide6', 'skimage', 'av', 'onnxruntime'})\n"
            "print('HEAVY', heavy, file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                         timeout=60)
    assert "HEAVY []" in out.stderr, out.stderr


def test_command_list_help_matches_each_command() -> None:
    """The command list (built without loading the commands) says what each command says."""
    import argparse

    from restorer.cli import COMMANDS, build_parser

    full = build_parser()
    sub = next(a for a in full._actions if isinstance(a, argparse._SubParsersAction))
    helps = {c.dest: c.help for c in sub._choices_actions}
    for name, (help_text, _) in COMMANDS.items():
        assert helps[name] == help_text, name


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


@pytest.mark.parametrize("case", ["missing", "corrupt", "folder", "mismatch"])
def test_bad_model_one_line(case: str, grey_clip: Path, tmp_path: Path, tiny_net_meta) -> None:
    model = tmp_path / "m.safetensors"
    if case == "corrupt":
        model.write_bytes(os.urandom(2000))
    elif case == "folder":
        model.mkdir()
    elif case == "mismatch":
        from restorer.checkpoint import META_KEY, save_tensors

        net, meta = tiny_net_meta
        meta.arch = {**meta.arch, "base": 6}  # declares a wider network than its weights
        save_tensors(model, net.state_dict(), {META_KEY: meta.to_json()})
    r = cli("colourize", str(grey_clip), "-o", str(tmp_path / "o.mp4"), "--model", str(model))
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) >= 1
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("restorer: error: ") and not last.endswith(":"), last
    assert "Traceback" not in r.stderr and not (tmp_path / "o.mp4").exists()
    expected = {"missing": "model file not found", "corrupt": "not a valid safetensors",
                "folder": "is a folder, not a model file",
                "mismatch": "of the wrong shape"}[case]
    assert expected in last, last


def test_model_collapsed_to_grey_is_refused(grey_clip: Path, tmp_path: Path,
                                            tiny_net_meta) -> None:
    """A valid file whose weights are all zero must not write grey frames and exit 0."""
    import torch

    from restorer.checkpoint import save_model

    net, meta = tiny_net_meta
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
    model = save_model(tmp_path / "zero.safetensors", net, meta)
    out = tmp_path / "o.mp4"
    r = cli("colourize", str(grey_clip), "-o", str(out), "--model", str(model), "--quiet")
    assert r.returncode == 1 and "predicts no colour" in r.stderr.strip().splitlines()[-1]
    assert not out.exists()
    # Grey asked for on purpose is still allowed.
    r = cli("colourize", str(grey_clip), "-o", str(out), "--model", str(model), "--quiet",
            "--chroma", "0")
    assert r.returncode == 0 and out.exists(), r.stderr


@pytest.mark.parametrize("flag", [["--crf", "99"], ["--crf", "-1"], ["--batch", "0"],
                                  ["--crf", "x"]])
def test_out_of_range_numbers_are_refused(flag: list[str], grey_clip: Path,
                                          tmp_path: Path) -> None:
    r = cli("colourize", str(grey_clip), "-o", str(tmp_path / "o.mp4"), *flag)
    assert r.returncode == 2 and f"argument {flag[0]}" in r.stderr
    assert not (tmp_path / "o.mp4").exists()


def test_same_output_as_input(grey_clip: Path, tiny_model_file: Path) -> None:
    before = grey_clip.read_bytes()
    r = cli("colourize", str(grey_clip), "-o", str(grey_clip), "--overwrite",
            "--model", str(tiny_model_file))
    assert r.returncode == 1 and "refusing to overwrite the input" in r.stderr
    assert grey_clip.read_bytes() == before


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_ctrl_c_mid_export(sig: str, clip_factory, tmp_path: Path,
                           tiny_model_file: Path) -> None:
    """Ctrl-C (to the process group, as a terminal sends it) and SIGTERM (to the process, as
    `timeout` and schedulers send it) both clean up and say so in one line."""
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
    if sig == "SIGINT":
        os.killpg(proc.pid, signal.SIGINT)
    else:
        os.kill(proc.pid, signal.SIGTERM)
    rc = proc.wait(timeout=30)
    os.set_blocking(fd, True)
    seen += proc.stderr.read()
    text = seen.decode("utf-8", "replace")
    assert rc == (130 if sig == "SIGINT" else 143), text[-800:]
    if sig == "SIGTERM":
        assert "terminated (SIGTERM)" in text.strip().splitlines()[-1]
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
