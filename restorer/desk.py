"""``restorer-desk``: the one executable of the packaged app.

With no arguments, with ``gui``, with a GUI option such as ``--model M``, or with a video file
path (what a desktop launcher passes for ``Exec=restorer-desk %f``) it starts the GUI. Anything
else goes to the ``restorer`` command line, so ``restorer-desk --version``, ``restorer-desk
colourize IN -o OUT`` and ``restorer-desk doctor`` behave as ``restorer`` does. PySide6 is
imported only when the GUI starts, so the command-line path works (and starts fast) on a machine
without a display.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

PROG = "restorer-desk"
_CLI_TOP_OPTIONS = frozenset({"-h", "--help", "--version", "-v", "--verbose"})


def _wants_gui(argv: Sequence[str]) -> bool:
    if not argv:
        return True
    first = argv[0]
    if first == "gui":
        return True
    # The command line's own top-level options; any other option (``--model X``) is the GUI's,
    # since the command line needs a sub-command first.
    if first.startswith("-"):
        return first.split("=")[0] not in _CLI_TOP_OPTIONS
    # A launcher passes the file it was asked to open; a sub-command name is never a path.
    return Path(first).suffix != "" and Path(first).is_file()


def _start_gui(args: list[str]) -> int:
    try:
        from restorer.gui import app
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in ("restorer", "PySide6", "shiboken6"):
            print(f"{PROG}: error: the GUI is not available in this build ({exc}); "
                  f"see '{PROG} --help' for the command line", file=sys.stderr)
            return 2
        raise
    return int(app.main(args) or 0)


def _frozen_setup() -> None:
    """Point imageio-ffmpeg at the bundled ffmpeg (the spec drops imageio-ffmpeg's own copy)."""
    base = getattr(sys, "_MEIPASS", None)
    if not base:
        return
    exe = Path(base) / "ffmpeg" / "ffmpeg"
    if exe.is_file():
        os.environ.setdefault("IMAGEIO_FFMPEG_EXE", str(exe))


def main(argv: Sequence[str] | None = None) -> int:
    # A frozen app re-executes itself for multiprocessing children; this must come first.
    import multiprocessing

    multiprocessing.freeze_support()
    _frozen_setup()

    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--version"]:
        # What the CLI prints, without importing torch and every sub-command first (seconds in a
        # frozen app).
        from restorer import __version__

        print(f"restorer {__version__}")
        return 0
    if _wants_gui(args):
        return _start_gui(args[1:] if args and args[0] == "gui" else args)

    from restorer.cli import main as cli_main

    return cli_main(args)


if __name__ == "__main__":
    sys.exit(main())
