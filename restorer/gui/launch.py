"""``restorer gui [episode] [--model PATH]``: the CLI's sub-command for the desk.

Importing this module must not import Qt: the CLI works on machines without PySide6.
"""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from restorer.gui.app import add_arguments

    p = sub.add_parser("gui", help="open the restoration desk (PySide6 window)",
                       description="Open the restoration desk: side-by-side preview, timeline, "
                                   "chroma controls and export.")
    add_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        import PySide6  # noqa: F401
    except ImportError:
        from restorer.errors import RestorerError

        raise RestorerError("the GUI needs PySide6: pip install PySide6-Essentials") from None
    from restorer.gui.app import run as run_app

    return run_app(args)
