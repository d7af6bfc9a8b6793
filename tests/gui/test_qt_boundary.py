"""House rule 1: Qt lives only in restorer/gui; the pure GUI models do not import it either."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import restorer

PACKAGE = Path(restorer.__file__).resolve().parent
QT_MODULES = ("PySide6", "PySide2", "PyQt5", "PyQt6", "shiboken6", "qtpy", "superqt")
# Modules inside restorer/gui that must stay Qt-free: the plain models and the CLI hook.
PURE_GUI = ("state.py", "cache.py", "preview.py", "launch.py", "app.py")


def qt_imports(path: Path, top_level_only: bool = False) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = []
    for node in nodes:
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        found += [n for n in names if n.split(".")[0] in QT_MODULES]
    return found


def test_no_qt_outside_gui():
    offenders = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] == "gui":
            continue
        found = qt_imports(path)
        if found:
            offenders[rel.as_posix()] = found
    assert not offenders, f"Qt imported outside restorer/gui: {offenders}"


def test_pure_gui_modules_do_not_import_qt_at_import_time():
    gui = PACKAGE / "gui"
    for name in PURE_GUI:
        path = gui / name
        if name in ("state.py", "cache.py", "preview.py"):
            assert not qt_imports(path), f"{name} must be Qt-free (a plain model)"
        else:
            assert not qt_imports(path, top_level_only=True), f"{name} imports Qt at import time"


def test_cli_and_models_import_without_qt():
    code = ("import sys, restorer.cli, restorer.gui.launch, restorer.gui.state, "
            "restorer.gui.cache, restorer.gui.preview; restorer.cli.build_parser(); "
            "bad = [m for m in sys.modules if m.split('.')[0] in "
            f"{QT_MODULES!r}]; print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_gui_subcommand_registered():
    from restorer.cli import build_parser

    args = build_parser().parse_args(["gui", "episode.mp4", "--model", "m.safetensors"])
    assert args.command == "gui" and args.episode == Path("episode.mp4")
    assert args.model == Path("m.safetensors") and callable(args.func)
