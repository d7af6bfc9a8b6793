"""Packaging: the PyInstaller spec, the desktop entry, the icons, ``restorer-desk`` dispatch, and
smoke tests of the frozen app that run only when ``packaging/build.sh`` has built it."""

from __future__ import annotations

import configparser
import os
import shutil
import struct
import subprocess
import sys
import types
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import restorer

REPO = Path(__file__).resolve().parent.parent
SPEC = REPO / "packaging" / "restorer-desk.spec"
DESKTOP = REPO / "packaging" / "restorer-desk.desktop"
ICONS = REPO / "resources" / "icons"
APP = REPO / "dist" / "restorer-desk"
FROZEN = APP / "restorer-desk"
DEMO = REPO / "resources" / "demo_bw.mp4"
ICON_SIZES = (16, 32, 48, 64, 128, 256)


# --- the spec -------------------------------------------------------------------------------


class _Recorder:
    """Stands in for PyInstaller's Analysis/PYZ/EXE/COLLECT and keeps what the spec passed."""

    calls: dict[str, _Recorder] = {}

    def __init__(self, kind: str, *args, **kwargs):
        self.kind, self.args, self.kwargs = kind, args, kwargs
        _Recorder.calls[kind] = self
        if kind == "Analysis":
            self.scripts, self.pure, self.zipfiles = [("entry", "x", "PYSOURCE")], [], []
            # What imageio-ffmpeg's hook adds: the spec must drop it (the app uses its own copy).
            self.datas = [("imageio_ffmpeg/binaries/ffmpeg-linux", "/x/ffmpeg-linux", "DATA"),
                          ("restorer/some.json", "/x/some.json", "DATA")]
            self.binaries = [("libfoo.so", "/x/libfoo.so", "BINARY"),
                             ("torch/bin/test_jit", "/x/test_jit", "BINARY"),
                             ("torch/bin/torch_shm_manager", "/x/torch_shm_manager", "BINARY")]
            self.datas.append(("torch/test/test_api", "/x/test_api", "DATA"))


def _run_spec(workpath: Path, model: Path | None, monkeypatch) -> dict[str, _Recorder]:
    if model is None:
        monkeypatch.setenv("RESTORER_BUNDLE_MODEL", str(workpath / "no-such-model.safetensors"))
    else:
        monkeypatch.setenv("RESTORER_BUNDLE_MODEL", str(model))
    _Recorder.calls = {}
    namespace = {
        "__name__": "__main__",
        "__file__": str(SPEC),
        "SPECPATH": str(SPEC.parent),
        "workpath": str(workpath),
        **{k: (lambda *a, _k=k, **kw: _Recorder(_k, *a, **kw))
           for k in ("Analysis", "PYZ", "EXE", "COLLECT")},
    }
    exec(compile(SPEC.read_text(), str(SPEC), "exec"), namespace)
    return dict(_Recorder.calls)


def test_spec_bundles_model_resources_and_ffmpeg(tmp_path, tiny_model_file, monkeypatch):
    card = tiny_model_file.with_suffix(".json")
    card.write_text('{"name": "tiny-test"}')
    calls = _run_spec(tmp_path / "work", tiny_model_file, monkeypatch)
    assert set(calls) == {"Analysis", "PYZ", "EXE", "COLLECT"}
    a = calls["Analysis"]
    datas = a.kwargs["datas"]
    by_dest: dict[str, list[Path]] = {}
    for src, dest in datas:
        by_dest.setdefault(dest, []).append(Path(src))

    # resources/ as a whole, under resources/ in the bundle (icons, theme, demo clip).
    assert REPO / "resources" in by_dest["resources"]
    # The model and its card, renamed default.* whatever the source is called.
    models = {p.name: p for p in by_dest["models"]}
    assert set(models) == {"default.safetensors", "default.json"}
    assert models["default.safetensors"].read_bytes() == tiny_model_file.read_bytes()
    assert models["default.json"].read_text() == card.read_text()

    # ffmpeg at ffmpeg/ffmpeg, where restorer.media.probe.ffmpeg_exe looks in a frozen app.
    import imageio_ffmpeg

    ff = [e for e in a.binaries if e[0] == "ffmpeg/ffmpeg"]
    assert len(ff) == 1
    assert Path(ff[0][1]) == Path(imageio_ffmpeg.get_ffmpeg_exe())
    assert os.access(ff[0][1], os.X_OK)
    # imageio-ffmpeg's own 170 MB copy is dropped; nothing else is.
    assert not [e for e in a.datas if e[0].startswith("imageio_ffmpeg/binaries")]
    assert ("restorer/some.json", "/x/some.json", "DATA") in a.datas
    assert ("libfoo.so", "/x/libfoo.so", "BINARY") in a.binaries
    # torch's C++ test programs go too, but not the shared-memory manager DataLoader workers use.
    dests = [e[0] for e in a.binaries + a.datas]
    assert "torch/bin/test_jit" not in dests and "torch/test/test_api" not in dests
    assert "torch/bin/torch_shm_manager" in dests

    # The entry point is restorer.desk, through a launcher outside the package.
    (script,) = a.args[0]
    assert "from restorer.desk import main" in Path(script).read_text()
    assert Path(script).is_relative_to(tmp_path / "work")
    assert Path(a.kwargs["pathex"][0]) == REPO

    # The sub-command modules of restorer.cli must be bundled.
    hidden = set(a.kwargs["hiddenimports"])
    for name in _command_modules():
        on_disk = (REPO / Path(*name.split("."))).with_suffix(".py").is_file() or (
            REPO / Path(*name.split(".")) / "__init__.py").is_file()
        assert (name in hidden) == on_disk, name
    assert {"restorer", "restorer.cli", "restorer.desk", "restorer.media.probe",
            "restorer.checkpoint"} <= hidden
    if (REPO / "restorer" / "gui" / "app.py").is_file():
        assert "restorer.gui.app" in hidden
    assert {"PySide6.QtCore", "PySide6.QtGui", "PySide6.QtWidgets"} <= hidden
    assert "tkinter" in a.kwargs["excludes"]
    assert "PySide6" not in a.kwargs["excludes"] and "torch" not in a.kwargs["excludes"]

    assert calls["EXE"].kwargs["name"] == "restorer-desk"
    assert calls["EXE"].kwargs["console"] is True  # the CLI must print
    assert calls["COLLECT"].kwargs["name"] == "restorer-desk"  # one-folder: dist/restorer-desk/


def test_spec_builds_without_a_model(tmp_path, monkeypatch, capsys):
    calls = _run_spec(tmp_path / "work", None, monkeypatch)
    dests = {dest for _, dest in calls["Analysis"].kwargs["datas"]}
    assert "models" not in dests and "resources" in dests
    assert "no model at" in capsys.readouterr().err


def _command_modules() -> set[str]:
    """The modules that define the CLI's sub-commands (where each one's ``run`` lives)."""
    import argparse

    from restorer.cli import build_parser

    def funcs(parser: argparse.ArgumentParser):
        if parser.get_default("func") is not None:
            yield parser.get_default("func")
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for child in action.choices.values():
                    yield from funcs(child)

    return {f.__module__ for f in funcs(build_parser())} - {"restorer.cli"}


def test_cli_imports_every_command_module():
    """restorer.cli imports its sub-command modules by name, so PyInstaller finds them."""
    text = (REPO / "restorer" / "cli.py").read_text()
    modules = _command_modules()
    assert {"restorer.scenes", "restorer.data.cli", "restorer.train.cli", "restorer.evaluate",
            "restorer.gui.launch"} <= modules
    for name in modules:
        assert f"from {name} import add_parser" in text, name


# --- desktop entry and icons ----------------------------------------------------------------


def test_desktop_entry():
    cp = configparser.ConfigParser(interpolation=None, strict=True)
    cp.optionxform = str  # keys are case-sensitive
    cp.read_string(DESKTOP.read_text(encoding="utf-8"))
    e = cp["Desktop Entry"]
    assert e["Type"] == "Application"
    assert e["Name"] == "Restorer"
    exec_words = e["Exec"].split()
    assert exec_words[0] == "restorer-desk"
    assert exec_words[1:] == ["%f"]
    assert e["Icon"] == "restorer"
    assert e["Terminal"] == "false"
    cats = e["Categories"].split(";")
    assert cats[-1] == "" and {"AudioVideo", "Video", "AudioVideoEditing"} <= set(cats)
    mimes = e["MimeType"].split(";")
    assert mimes[-1] == ""
    assert {"video/mp4", "video/x-matroska", "video/quicktime"} <= set(mimes)
    assert all(m.startswith("video/") for m in mimes[:-1])
    validate = shutil.which("desktop-file-validate")  # Debian: desktop-file-utils
    if validate:
        r = subprocess.run([validate, str(DESKTOP)], capture_output=True, text=True)
        assert r.returncode == 0 and "error" not in r.stdout, r.stdout + r.stderr


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", head[16:24])


def test_icon_set():
    root = ET.parse(ICONS / "restorer.svg").getroot()
    assert root.tag.endswith("svg")
    assert root.get("viewBox") == "0 0 256 256"
    for s in ICON_SIZES:
        png = ICONS / "hicolor" / f"{s}x{s}" / "apps" / "restorer.png"
        assert _png_size(png) == (s, s)


# --- restorer-desk dispatch -----------------------------------------------------------------


def test_desk_cli_path_does_not_import_qt():
    """The whole CLI parser (every sub-command module, the GUI's included) loads without Qt."""
    code = ("import sys\nfrom restorer.desk import main\n"
            "try:\n    main(['colourize', '--help'])\n"
            "except SystemExit as e:\n    assert e.code == 0, e.code\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6'))\n"
            "assert not bad, bad\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "--output" in r.stdout


def test_desk_version_matches_cli(capsys):
    from restorer import desk
    from restorer.cli import main as cli_main

    assert desk.main(["--version"]) == 0
    fast = capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        cli_main(["--version"])
    assert exc.value.code == 0
    assert fast == capsys.readouterr().out == f"restorer {restorer.__version__}\n"


def _fake_gui_app(monkeypatch, module) -> None:
    """Make ``from restorer.gui import app`` give ``module`` (or fail, for None)."""
    import importlib

    monkeypatch.setitem(sys.modules, "restorer.gui.app", module)
    try:
        pkg = importlib.import_module("restorer.gui")
    except ModuleNotFoundError:
        return
    if module is None:
        monkeypatch.delattr(pkg, "app", raising=False)
    else:
        monkeypatch.setattr(pkg, "app", module, raising=False)


def test_desk_dispatch(tmp_path, monkeypatch):
    from restorer import desk

    seen: list[list[str]] = []
    fake = types.ModuleType("restorer.gui.app")

    def gui_main(argv):  # restorer.gui.app.main's signature
        seen.append(list(argv))
        return 0

    fake.main = gui_main
    # restorer.gui.launch (the CLI's ``gui`` sub-command) takes its options from the app module.
    fake.add_arguments = lambda p: p.add_argument("episode", nargs="?")
    _fake_gui_app(monkeypatch, fake)
    monkeypatch.setattr(sys, "argv", ["restorer-desk"])
    clip = tmp_path / "episode.mp4"
    clip.write_bytes(b"")

    assert desk.main([]) == 0
    assert desk.main(["gui"]) == 0
    assert desk.main(["gui", "--x"]) == 0
    assert desk.main([str(clip)]) == 0  # what Exec=restorer-desk %f passes
    assert desk.main(["--model", "m.safetensors", str(clip)]) == 0  # GUI options, no "gui"
    assert seen == [[], [], ["--x"], [str(clip)], ["--model", "m.safetensors", str(clip)]]

    seen.clear()
    assert desk.main(["--version"]) == 0
    with pytest.raises(SystemExit) as exc:
        desk.main(["doctor", "--help"])
    assert exc.value.code == 0
    assert desk.main(["colourize", str(tmp_path / "missing.mp4"), "-o",
                      str(tmp_path / "out.mp4")]) == 1
    assert seen == []


def test_desk_without_gui_says_so(monkeypatch, capsys):
    from restorer import desk

    _fake_gui_app(monkeypatch, None)  # None in sys.modules: the import fails
    assert desk.main([]) == 2
    assert "GUI is not available" in capsys.readouterr().err


# --- the frozen app (only after packaging/build.sh) ----------------------------------------

frozen = pytest.mark.skipif(not FROZEN.is_file(),
                            reason="no build: run packaging/build.sh to make dist/restorer-desk")


def _build_info() -> dict[str, str]:
    """dist/restorer-desk/BUILD-INFO.txt, written by packaging/build.sh."""
    f = APP / "BUILD-INFO.txt"
    if not f.is_file():
        return {}
    pairs = (line.partition("=") for line in f.read_text().splitlines())
    return {k.strip(): v.strip() for k, _, v in pairs}


def _run_frozen(*args: str, timeout: float = 240, home: Path | None = None
                ) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if k not in ("RESTORER_MODEL", "PYTHONPATH", "PYTHONHOME", "IMAGEIO_FFMPEG_EXE")}
    env["QT_QPA_PLATFORM"] = "offscreen"
    if home is not None:  # keep the GUI's settings and logs out of the real home
        env["HOME"] = str(home)
        for var, sub in (("XDG_CONFIG_HOME", ".config"), ("XDG_CACHE_HOME", ".cache"),
                         ("XDG_STATE_HOME", ".local/state"), ("XDG_DATA_HOME", ".local/share")):
            env[var] = str(home / sub)
    return subprocess.run([str(FROZEN), *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=REPO)


@frozen
def test_frozen_version():
    r = _run_frozen("--version")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().split()[-1] == restorer.__version__


@frozen
def test_frozen_doctor_uses_bundled_ffmpeg():
    r = _run_frozen("doctor")
    assert r.returncode == 0, r.stderr
    bundled = APP / "_internal" / "ffmpeg" / "ffmpeg"
    assert bundled.is_file()
    assert f"ffmpeg   {bundled}" in r.stdout, r.stdout
    assert "pyside6" in r.stdout and "pyav" in r.stdout and "not installed" not in r.stdout


@frozen
def test_frozen_colourize_demo(tmp_path, tiny_model_file):
    from restorer.media import probe

    out = tmp_path / "demo_colour.mp4"
    args = ["colourize", str(DEMO), "-o", str(out), "--quiet"]
    if not (APP / "_internal" / "models" / "default.safetensors").is_file():
        args += ["--model", str(tiny_model_file)]
    r = _run_frozen(*args)
    assert r.returncode == 0, r.stderr
    src, dst = probe(DEMO), probe(out)
    assert dst.frame_count == src.frame_count
    assert dst.fps == src.fps
    assert (dst.width, dst.height) == (src.width, src.height)
    assert len(dst.audio) == len(src.audio)


@frozen
def test_frozen_gui_starts_headless(tmp_path, tiny_model_file):
    """The packaged desk opens the demo clip offscreen, previews a frame, saves a grab, quits."""
    if _build_info().get("gui") == "no":
        pytest.skip("this build was made before restorer/gui/app.py existed")
    shot = tmp_path / "desk.png"
    args = [str(DEMO), "--screenshot", str(shot), "--size", "960x600"]
    if not (APP / "_internal" / "models" / "default.safetensors").is_file():
        args += ["--model", str(tiny_model_file)]
    r = _run_frozen(*args, timeout=280, home=tmp_path / "home")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "screenshot saved" in r.stdout, r.stdout + r.stderr
    w, h = _png_size(shot)
    assert w >= 480 and h >= 300
