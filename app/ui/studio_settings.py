"""What the studio remembers between launches, beside the app's settings file (DOPPEL_CONFIG_DIR):
the window layout and the last pipeline settings (main_window), the folder each file dialog last used,
and the source people of the Faces panel."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from PySide6.QtCore import QSettings

from app.core.paths import config_dir

log = logging.getLogger(__name__)


def studio_settings() -> QSettings:
    return QSettings(str(config_dir() / "studio.ini"), QSettings.Format.IniFormat)


def last_folder(kind: str) -> str:
    """The folder the `kind` dialog ("media", "photos", "identities", "export") last used; "" (the
    current folder) the first time, or when that folder is gone."""
    value = studio_settings().value(f"folders/{kind}")
    return value if isinstance(value, str) and Path(value).is_dir() else ""


def remember_folder(kind: str, chosen: Path) -> None:
    """Remember the folder of a file the user picked in the `kind` dialog."""
    studio_settings().setValue(f"folders/{kind}", str(chosen if chosen.is_dir() else chosen.parent))


def stored_json(key: str) -> object | None:
    """A JSON value saved under `key`; None when absent or unreadable (logged, never fatal)."""
    text = studio_settings().value(key)
    if not isinstance(text, str):
        return None
    try:
        value: object = json.loads(text)
    except json.JSONDecodeError:
        log.warning("the studio's saved %s could not be read; starting without it", key)
        return None
    return value


def store_json(key: str, value: object) -> None:
    studio_settings().setValue(key, json.dumps(value))
