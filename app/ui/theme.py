"""The dark theme: Fusion style, a dark palette, plots to match, and colours for message levels.

Call `apply_dark_theme(app)` once at start, before windows are built: pyqtgraph reads its background and
foreground options when a plot is created.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

WINDOW = "#2b2b2e"
BASE = "#1f1f22"
ALTERNATE = "#29292d"
TEXT = "#e6e6e6"
DISABLED_TEXT = "#7a7a7f"
BUTTON = "#353539"
HIGHLIGHT = "#3d7fd9"
LINK = "#6aa9ff"
PLOT_BACKGROUND = BASE
PLOT_FOREGROUND = "#c8c8c8"

# Message levels on a dark and on a light background.
_LEVEL_COLOURS = {
    True: {"info": TEXT, "warning": "#e8b04a", "error": "#f06c6c"},
    False: {"info": "#202020", "warning": "#9a6200", "error": "#b00020"},
}


def dark_palette() -> QPalette:
    role, group = QPalette.ColorRole, QPalette.ColorGroup
    palette = QPalette()
    colours = {
        role.Window: WINDOW,
        role.WindowText: TEXT,
        role.Base: BASE,
        role.AlternateBase: ALTERNATE,
        role.ToolTipBase: BUTTON,
        role.ToolTipText: TEXT,
        role.PlaceholderText: DISABLED_TEXT,
        role.Text: TEXT,
        role.Button: BUTTON,
        role.ButtonText: TEXT,
        role.BrightText: "#ff5555",
        role.Light: "#4a4a4f",
        role.Midlight: "#3e3e43",
        role.Mid: "#2f2f33",
        role.Dark: "#1a1a1c",
        role.Shadow: "#0d0d0e",
        role.Highlight: HIGHLIGHT,
        role.HighlightedText: "#ffffff",
        role.Link: LINK,
        role.LinkVisited: "#a58bff",
    }
    for which, colour in colours.items():
        palette.setColor(which, QColor(colour))
    for which in (role.WindowText, role.Text, role.ButtonText, role.HighlightedText):
        palette.setColor(group.Disabled, which, QColor(DISABLED_TEXT))
    palette.setColor(group.Disabled, role.Highlight, QColor("#4a4a4f"))
    palette.setColor(group.Disabled, role.Button, QColor(WINDOW))
    return palette


def apply_dark_theme(app: QApplication) -> None:
    """Fusion with a dark palette for the whole app, and pyqtgraph plots created from now on to match."""
    app.setStyle("Fusion")
    app.setPalette(dark_palette())
    pg.setConfigOptions(background=PLOT_BACKGROUND, foreground=PLOT_FOREGROUND)


def is_dark(app: QApplication) -> bool:
    """True when the app's windows are dark (its window colour is darker than mid grey)."""
    return app.palette().color(QPalette.ColorRole.Window).lightness() < 128


def level_colour(level: str, dark: bool) -> QColor:
    """The text colour for a message level ("info", "warning", "error") on a dark or light background."""
    colours = _LEVEL_COLOURS[dark]
    return QColor(colours.get(level, colours["info"]))
