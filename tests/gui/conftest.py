"""Qt fixtures for the desk: isolated settings, a window with the tiny colouriser, and a check
(as napari does) that no test leaves work running on the thread pool."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QSettings, QThreadPool  # noqa: E402

WAIT_MS = 20000  # generous: CI machines are loaded 2-core boxes


@pytest.fixture(autouse=True)
def no_dangling_threads(qapp):
    """Fail a test that leaves QThreadPool work running."""
    yield
    pool = QThreadPool.globalInstance()
    assert pool.waitForDone(WAIT_MS), "thread-pool work was still running 20 s after the test"
    assert pool.activeThreadCount() == 0


@pytest.fixture
def settings(tmp_path: Path) -> QSettings:
    return QSettings(str(tmp_path / "restorer-settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def make_window(qtbot, settings, tiny_colouriser):
    """``make(**kwargs)`` builds a shown MainWindow using the tiny colouriser by default."""
    from restorer.gui.main_window import MainWindow

    made = []

    def make(**kwargs) -> MainWindow:
        kwargs.setdefault("settings", settings)
        if "colouriser_factory" not in kwargs:
            kwargs.setdefault("colouriser", tiny_colouriser)
        kwargs.setdefault("load_model", False)
        w = MainWindow(**kwargs)
        w.resize(900, 600)
        qtbot.addWidget(w)
        w.show()
        made.append(w)
        return w

    yield make
    for w in made:
        w.close()


@pytest.fixture
def window(make_window):
    return make_window()


@pytest.fixture
def open_and_wait(qtbot):
    """``open_and_wait(window, path)``: open an episode and wait for its first preview."""

    def run(window, path: Path, frame: int = 0) -> None:
        window.open_episode(path)
        qtbot.waitUntil(lambda: window.viewer.frame == frame and window.current is not None,
                        timeout=WAIT_MS)

    return run
