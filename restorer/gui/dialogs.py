"""Errors reach the user as dialogs with a message they can act on; details go to a log file."""

from __future__ import annotations

import errno
import logging
import logging.handlers
import re
import sys
import traceback
from pathlib import Path
from types import TracebackType

from PySide6.QtCore import QStandardPaths, Qt
from PySide6.QtWidgets import QMessageBox, QWidget

from restorer.errors import Cancelled, MediaError, ModelError, OutputError, RestorerError

log = logging.getLogger("restorer.gui")
_log_path: Path | None = None


def log_dir() -> Path:
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(base or Path.home() / ".restorer")


def setup_logging(path: Path | None = None) -> Path:
    """Log everything at INFO and above to ``restorer.log`` in the app data folder (rotated)."""
    global _log_path
    path = path or log_dir() / "restorer.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=2 * 2**20, backupCount=3,
                                                   encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(min(root.level or logging.INFO, logging.INFO))
    _log_path = path
    return path


def log_path() -> Path | None:
    return _log_path


# The library words some advice for the command line; the desk says the same thing in terms
# of its own controls. (pattern, replacement), applied in order to an error's message.
_DESK_WORDING: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"; pass --overwrite to replace it"),
     "; export again and choose Replace, or pick another file name"),
    (re.compile(r"; pass --allow-truncated to render what decodes"),
     "; export again and choose to export the frames that decode, or copy the file again "
     "from its source"),
    (re.compile(r"; render a shorter range with --end (\d+)"),
     r"; set the out point before frame \1 and export again"),
    (re.compile(r"; lower --size or use --device cpu"),
     "; choose the Fast quality (a smaller working size) and try again"),
    (re.compile(r"; give a model file, or set RESTORER_MODEL to one"),
     "; open a model file with File > Open model"),
)


def desk_wording(text: str) -> str:
    """``text`` with command-line advice ("pass --overwrite") put in the desk's terms."""
    for pattern, replacement in _DESK_WORDING:
        text = pattern.sub(replacement, text)
    return text


def user_message(exc: BaseException, context: str = "") -> tuple[str, str]:
    """``(title, text)`` for a dialog: what went wrong and what to do about it."""
    where = f" (details in {_log_path})" if _log_path else ""
    said = desk_wording(str(exc))
    if isinstance(exc, Cancelled):
        return "Cancelled", said
    if isinstance(exc, MediaError):
        return "Cannot read the video", (
            f"{said}\n\nCheck that the file is a complete video that ffmpeg can play, or "
            "re-export it from the source.")
    if isinstance(exc, ModelError):
        # Whatever model failed (the operator's own, or the shipped one), the way on is another
        # model file; reinstalling would only help a damaged shipped model, which the start-up
        # fallback reports separately.
        return "Cannot use this model", (
            f"{said}\n\nOpen another model file (File > Open model…); the model in use, if "
            "any, stays loaded.")
    if isinstance(exc, OutputError):
        return "Cannot write the output", (
            f"{said}\n\nChoose another folder or file name, or free some disk space.")
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return "The disk is full", (
            f"{exc.strerror}: {exc.filename or ''}\n\nFree some space or choose another "
            "output folder; nothing partial was left behind.")
    if isinstance(exc, PermissionError):
        return "Permission denied", f"{said}\n\nChoose a location you can write to."
    if isinstance(exc, RestorerError):
        return "Restorer", said
    what = f"{context}: " if context else ""
    return "Unexpected error", (
        f"{what}{type(exc).__name__}: {exc}\n\nThe desk is still usable. Please report this "
        f"with the log file{where}.")


def confirm(parent: QWidget | None, title: str, text: str, action: str,
            keep: str = "Cancel") -> bool:
    """Ask before something that cannot be undone; True when ``action`` is chosen.

    The safe answer, ``keep``, is the default button and what Escape or closing the box means.
    The box is modal and waits for the answer: every caller (closing the window, starting an
    export over an existing file) needs it before it can go on.
    """
    box = QMessageBox(QMessageBox.Icon.Question, title, text, QMessageBox.StandardButton.NoButton,
                      parent)
    box.setObjectName("confirmDialog")
    go = box.addButton(action, QMessageBox.ButtonRole.DestructiveRole)
    stay = box.addButton(keep, QMessageBox.ButtonRole.RejectRole)
    box.setDefaultButton(stay)
    box.setEscapeButton(stay)
    box.exec()
    return box.clickedButton() is go


def show_error(parent: QWidget | None, exc: BaseException, context: str = "") -> QMessageBox:
    """Log ``exc`` and show it in a window-modal dialog that does not block the event loop."""
    level = logging.INFO if isinstance(exc, Cancelled) else logging.ERROR
    log.log(level, "%s%s", f"{context}: " if context else "", exc,
            exc_info=(type(exc), exc, exc.__traceback__) if level == logging.ERROR else None)
    title, text = user_message(exc, context)
    box = QMessageBox(QMessageBox.Icon.Critical if level == logging.ERROR
                      else QMessageBox.Icon.Information, title, text,
                      QMessageBox.StandardButton.Ok, parent)
    box.setObjectName("errorDialog")
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.setWindowModality(Qt.WindowModality.WindowModal)
    if exc.__traceback__ is not None and level == logging.ERROR \
            and not isinstance(exc, RestorerError):
        box.setDetailedText("".join(traceback.format_exception(type(exc), exc,
                                                               exc.__traceback__)))
    box.open()
    return box


def install_excepthook(parent_getter: object = None) -> None:
    """Log uncaught exceptions in Qt slots and show them, instead of letting the app die."""

    def hook(etype: type[BaseException], value: BaseException,
             tb: TracebackType | None) -> None:
        if issubclass(etype, KeyboardInterrupt):
            sys.__excepthook__(etype, value, tb)
            return
        log.error("uncaught exception", exc_info=(etype, value, tb))
        try:
            parent = parent_getter() if callable(parent_getter) else None
            show_error(parent, value, "internal error")
        except Exception:  # never let the hook itself take the app down
            traceback.print_exception(etype, value, tb)

    sys.excepthook = hook
