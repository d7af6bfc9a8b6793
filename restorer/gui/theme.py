"""A neutral dark theme for colour work: greys with equal R, G and B, no tinted surfaces.

Colour judgement depends on the surround, so every surface is a true neutral grey; the only
saturated marks are small ones (in/out points, cuts, the playhead) on the timeline.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QColor, QIcon, QPalette
from PySide6.QtWidgets import QApplication

RESOURCES = Path(__file__).resolve().parents[2] / "resources"
ICONS = RESOURCES / "icons"

# Neutral greys (R = G = B).
BG = "#262626"  # window
PANEL = "#2e2e2e"  # panels, menus
FIELD = "#1f1f1f"  # inputs, the viewer surround
VIEWER = "#181818"
BORDER = "#3c3c3c"
TEXT = "#d6d6d6"
TEXT_DIM = "#8c8c8c"
HILITE = "#5a5a5a"  # selection: neutral, so it never tints the picture
# Small accents on the timeline only.
MARK_IN_OUT = "#d8b04a"
CUT = "#c05050"
PLAYHEAD = "#f0f0f0"


def _icon(name: str) -> str:
    return (ICONS / f"{name}.svg").as_posix()


QSS = f"""
QWidget {{ background: {BG}; color: {TEXT}; font-size: 10pt; }}
QMainWindow::separator {{ background: {BORDER}; width: 1px; height: 1px; }}
QMenuBar {{ background: {PANEL}; border-bottom: 1px solid {BORDER}; }}
QMenuBar::item {{ padding: 4px 10px; background: transparent; }}
QMenuBar::item:selected, QMenu::item:selected {{ background: {HILITE}; }}
QMenu {{ background: {PANEL}; border: 1px solid {BORDER}; padding: 4px 0; }}
QMenu::item {{ padding: 5px 24px 5px 24px; }}
QMenu::item:disabled {{ color: {TEXT_DIM}; }}
QMenu::separator {{ height: 1px; background: {BORDER}; margin: 4px 8px; }}
QToolBar {{ background: {PANEL}; border: none; border-bottom: 1px solid {BORDER};
           spacing: 2px; padding: 3px; }}
QToolButton {{ background: transparent; border: 1px solid transparent; border-radius: 3px;
              padding: 4px; }}
QToolButton:hover {{ background: #3a3a3a; border-color: {BORDER}; }}
QToolButton:checked, QToolButton:pressed {{ background: {HILITE}; border-color: #6a6a6a; }}
QStatusBar {{ background: {PANEL}; border-top: 1px solid {BORDER}; color: {TEXT_DIM}; }}
QStatusBar QLabel {{ background: transparent; color: {TEXT_DIM}; padding: 0 8px; }}
QDockWidget {{ titlebar-close-icon: none; }}
QDockWidget::title {{ background: {PANEL}; padding: 5px 8px; border-bottom: 1px solid {BORDER}; }}
QGroupBox {{ border: 1px solid {BORDER}; border-radius: 4px; margin-top: 14px;
            padding: 10px 8px 8px 8px; background: {PANEL}; }}
QGroupBox::title {{ subcontrol-origin: margin; left: 8px; padding: 0 4px; color: {TEXT_DIM};
                   background: transparent; }}
QGroupBox QWidget {{ background: {PANEL}; }}
QLabel#cardTitle {{ font-weight: bold; font-size: 11pt; }}
QLabel#dim, QLabel[dim="true"] {{ color: {TEXT_DIM}; }}
QLabel#timecode {{ font-family: "DejaVu Sans Mono", "Menlo", "Consolas", monospace;
                  font-size: 13pt; color: {TEXT}; background: {FIELD}; border: 1px solid {BORDER};
                  border-radius: 3px; padding: 2px 8px; }}
QLineEdit, QSpinBox, QDoubleSpinBox, QComboBox, QPlainTextEdit, QTextEdit {{
    background: {FIELD}; border: 1px solid {BORDER}; border-radius: 3px; padding: 3px 6px;
    selection-background-color: {HILITE}; }}
QComboBox::drop-down {{ border: none; width: 20px; }}
QComboBox::down-arrow {{ image: url("{_icon('chevron-down')}"); width: 12px;
                        height: 12px; }}
QComboBox QAbstractItemView {{ background: {PANEL}; border: 1px solid {BORDER};
                              selection-background-color: {HILITE}; }}
QPushButton {{ background: #383838; border: 1px solid #4a4a4a; border-radius: 3px;
              padding: 5px 14px; min-width: 64px; }}
QPushButton:hover {{ background: #424242; }}
QPushButton:pressed {{ background: {HILITE}; }}
QPushButton:default {{ border-color: #8a8a8a; }}
QPushButton:disabled {{ color: #6a6a6a; border-color: #383838; }}
QSlider::groove:horizontal {{ height: 4px; background: {FIELD}; border: 1px solid {BORDER};
                             border-radius: 2px; }}
QSlider::sub-page:horizontal {{ background: #6e6e6e; border-radius: 2px; }}
QSlider::handle:horizontal {{ background: #cfcfcf; width: 12px; margin: -6px 0;
                             border-radius: 6px; }}
QProgressBar {{ background: {FIELD}; border: 1px solid {BORDER}; border-radius: 3px;
               text-align: center; height: 16px; }}
QProgressBar::chunk {{ background: #7a7a7a; border-radius: 2px; }}
QCheckBox::indicator, QRadioButton::indicator {{ width: 14px; height: 14px;
    border: 1px solid #707070; background: {FIELD}; }}
QCheckBox::indicator {{ border-radius: 2px; }}
QRadioButton::indicator {{ border-radius: 8px; }}
QCheckBox::indicator:hover, QRadioButton::indicator:hover {{ border-color: #a0a0a0; }}
QCheckBox::indicator:checked {{ image: url("{_icon('check')}"); background: #505050; }}
QRadioButton::indicator:checked {{ image: url("{_icon('radio-on')}"); }}
QCheckBox::indicator:disabled, QRadioButton::indicator:disabled {{ border-color: #4a4a4a; }}
QSpinBox::up-button, QSpinBox::down-button {{ width: 16px; border: none; background: #333333; }}
QSpinBox::up-button {{ border-top-right-radius: 3px; }}
QSpinBox::down-button {{ border-bottom-right-radius: 3px; }}
QSpinBox::up-button:hover, QSpinBox::down-button:hover {{ background: #444444; }}
QSpinBox::up-arrow {{ image: url("{_icon('chevron-up')}"); width: 9px; height: 9px; }}
QSpinBox::down-arrow {{ image: url("{_icon('chevron-down')}"); width: 9px; height: 9px; }}
QScrollBar {{ background: {BG}; }}
QToolTip {{ background: {PANEL}; color: {TEXT}; border: 1px solid {BORDER}; }}
/* Only the text labels: the icon is a QLabel too, and widening it pushed the text right. */
QMessageBox QLabel#qt_msgbox_label, QMessageBox QLabel#qt_msgbox_informativelabel {{
    min-width: 360px; }}
QLabel#notice {{ background: {FIELD}; border: 1px solid #6a6a6a; border-radius: 3px;
                padding: 4px 6px; color: {TEXT}; }}
"""


def palette() -> QPalette:
    pal = QPalette()
    roles = {
        QPalette.ColorRole.Window: BG, QPalette.ColorRole.WindowText: TEXT,
        QPalette.ColorRole.Base: FIELD, QPalette.ColorRole.AlternateBase: PANEL,
        QPalette.ColorRole.ToolTipBase: PANEL, QPalette.ColorRole.ToolTipText: TEXT,
        QPalette.ColorRole.Text: TEXT, QPalette.ColorRole.Button: "#383838",
        QPalette.ColorRole.ButtonText: TEXT, QPalette.ColorRole.BrightText: "#ffffff",
        QPalette.ColorRole.Highlight: HILITE, QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Link: "#b0b0b0", QPalette.ColorRole.PlaceholderText: TEXT_DIM,
    }
    for role, colour in roles.items():
        pal.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText,
                 QPalette.ColorRole.WindowText):
        pal.setColor(QPalette.ColorGroup.Disabled, role, QColor("#6a6a6a"))
    return pal


def apply(app: QApplication) -> None:
    """Fusion style, the neutral palette and the style sheet."""
    app.setStyle("Fusion")
    app.setPalette(palette())
    app.setStyleSheet(QSS)


def icon(name: str) -> QIcon:
    """An icon from ``resources/icons/<name>.svg`` (an empty icon if it is missing)."""
    path = ICONS / f"{name}.svg"
    return QIcon(str(path)) if path.exists() else QIcon()
