"""``restorer-gui [episode] [--model PATH]``: start the restoration desk.

Hidden options for packaging and documentation: ``--screenshot PNG`` opens the episode, waits
for the preview, saves ``QWidget.grab()`` of the window and quits; ``--frame N`` picks the frame.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, cast

from restorer import __version__

if TYPE_CHECKING:
    from PySide6.QtWidgets import QApplication


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="restorer-gui",
                                description="Restorer's restoration desk (PySide6).")
    add_arguments(p)
    p.add_argument("--version", action="version", version=f"restorer-gui {__version__}")
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("episode", nargs="?", type=Path, default=None, help="video to open")
    p.add_argument("--model", type=Path, default=None,
                   help="model file (.safetensors); default: the last used or the shipped one")
    p.add_argument("--screenshot", type=Path, default=None, help=argparse.SUPPRESS)
    p.add_argument("--frame", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--mode", default=None, help=argparse.SUPPRESS)
    p.add_argument("--size", default="1440x860", help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    """Create the QApplication and the window; return the exit status."""
    from PySide6.QtCore import QCoreApplication, QTimer
    from PySide6.QtWidgets import QApplication

    from restorer.gui import theme
    from restorer.gui.dialogs import install_excepthook, setup_logging
    from restorer.gui.main_window import MainWindow

    QCoreApplication.setOrganizationName("Restorer")
    QCoreApplication.setApplicationName("Restorer")
    QCoreApplication.setApplicationVersion(__version__)
    # instance() is typed as the QCoreApplication base; here it can only be a QApplication.
    app = cast(QApplication, QApplication.instance() or QApplication(sys.argv[:1]))
    theme.apply(app)
    app.setWindowIcon(theme.icon("restorer"))
    log_file = setup_logging()
    logging.getLogger(__name__).info("restorer-gui %s starting; log at %s", __version__, log_file)

    # The window tries --model first and remembers it only once it loads: a bad path given
    # once must not become the model every later start fails on.
    window = MainWindow(model=args.model)
    install_excepthook(lambda: window)
    if args.screenshot is not None:
        w, _, h = str(args.size).partition("x")
        window.resize(int(w), int(h))
        if args.mode:
            window.state.set_mode(args.mode)
    window.show()
    if args.episode is not None:
        QTimer.singleShot(0, lambda: window.open_path(args.episode))
    if args.screenshot is not None:
        _arm_screenshot(window, app, args)
    return int(app.exec())


def _arm_screenshot(window: object, app: QApplication, args: argparse.Namespace) -> None:
    """Save the window once a coloured frame is on screen (or after 120 s), then quit."""
    from PySide6.QtCore import QTimer

    from restorer.gui.main_window import MainWindow

    assert isinstance(window, MainWindow)
    state = {"jumped": False, "saved": False}

    def save() -> None:
        if state["saved"]:
            return
        state["saved"] = True
        img = window.grab()
        args.screenshot.parent.mkdir(parents=True, exist_ok=True)
        img.save(str(args.screenshot))
        print(f"screenshot saved to {args.screenshot} ({img.width()}x{img.height()})")
        window.close()
        app.quit()

    def shown(n: int) -> None:
        if window.colouriser is None:
            return
        if args.frame is not None and not state["jumped"]:
            state["jumped"] = True
            window.state.mark_in(max(0, args.frame - 40))
            window.state.mark_out(min(window.state.last_frame, args.frame + 60))
            window.state.set_frame(args.frame)
            return
        if args.frame is None or n == args.frame:
            QTimer.singleShot(600, save)

    window.preview_shown.connect(shown)
    window.model_changed.connect(lambda _c: window.request_preview())
    QTimer.singleShot(120000, save)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
