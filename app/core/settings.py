"""Typed, versioned user settings, stored as JSON in the config folder.

Only what the engine and the command line need lives here for now; the GUI adds its own sections.
A file from a newer Doppel (higher version) is refused rather than silently rewritten.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.core.errors import SettingsError
from app.core.paths import config_dir

SETTINGS_VERSION = 1
SETTINGS_FILE = "settings.json"


class DownloadSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    parallel: int = Field(default=3, ge=1, le=16)
    retries: int = Field(default=4, ge=0, le=20)
    timeout_s: float = Field(default=30.0, gt=0)


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = SETTINGS_VERSION
    models_dir: Path | None = None
    extra_catalogs: list[Path] = Field(default_factory=list)
    download: DownloadSettings = Field(default_factory=DownloadSettings)


def settings_path() -> Path:
    return config_dir() / SETTINGS_FILE


def load_settings(path: Path | None = None) -> Settings:
    """Settings from disk; defaults when the file does not exist yet."""
    path = path or settings_path()
    if not path.exists():
        return Settings()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise SettingsError(f"Settings file {path} cannot be read: {exc}") from exc
    version = raw.get("version") if isinstance(raw, dict) else None
    if not isinstance(version, int) or version > SETTINGS_VERSION:
        raise SettingsError(
            f"Settings file {path} has version {version!r}; this Doppel understands up to {SETTINGS_VERSION}"
        )
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise SettingsError(f"Settings file {path} is invalid: {exc.errors()[0]['msg']}") from exc


def save_settings(settings: Settings, path: Path | None = None) -> None:
    """Write atomically, so a crash mid-write never leaves a half file."""
    path = path or settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".settings-", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(settings.model_dump_json(indent=2))
    Path(tmp).replace(path)
