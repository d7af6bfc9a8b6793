"""Errors become dialogs a user can act on, and are logged to a file."""

from __future__ import annotations

import errno
import logging

from PySide6.QtWidgets import QMessageBox, QWidget

from restorer.errors import MediaError, ModelError, OutputError
from restorer.gui.dialogs import setup_logging, show_error, user_message


def test_messages_say_what_to_do():
    title, text = user_message(MediaError("clip.mp4: moov atom not found"))
    assert title == "Cannot read the video" and "clip.mp4" in text
    title, text = user_message(ModelError("model file not found: x.safetensors"))
    assert "model" in title.lower() and "Open model" in text
    title, text = user_message(OutputError("disk full while writing out.mp4"))
    assert "free some disk space" in text
    title, text = user_message(OSError(errno.ENOSPC, "No space left on device", "/x/out.mp4"))
    assert title == "The disk is full" and "/x/out.mp4" in text
    title, text = user_message(ZeroDivisionError("boom"), "merging")
    assert title == "Unexpected error" and "still usable" in text


def test_show_error_is_non_blocking_and_logged(qtbot, tmp_path):
    log_file = setup_logging(tmp_path / "restorer.log")
    parent = QWidget()
    qtbot.addWidget(parent)
    try:
        box = show_error(parent, MediaError("bad.mp4 is not a video"), "opening bad.mp4")
        assert isinstance(box, QMessageBox) and box.isVisible()
        box.close()
        for h in logging.getLogger().handlers:
            h.flush()
        assert "bad.mp4 is not a video" in log_file.read_text()
    finally:
        root = logging.getLogger()
        for h in list(root.handlers):
            if getattr(h, "baseFilename", "") == str(log_file):
                root.removeHandler(h)
                h.close()
