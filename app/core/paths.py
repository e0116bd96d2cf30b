"""Where Doppel keeps its files: install root, settings, caches.

A portable install (a source checkout or the Windows portable folder: `main.py` beside the `app`
package) keeps models in ./models. An installed package uses the platform's user directories.
`DOPPEL_CONFIG_DIR` and `DOPPEL_CACHE_DIR` override the settings and cache folders (tests use them).
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from app import APP_NAME

APP_ROOT = Path(__file__).resolve().parents[2]


def is_portable_install() -> bool:
    """True when running from a folder that holds main.py next to the app package."""
    return (APP_ROOT / "main.py").is_file() and (APP_ROOT / "app" / "__init__.py").is_file()


def config_dir() -> Path:
    override = os.environ.get("DOPPEL_CONFIG_DIR")
    return Path(override) if override else Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def cache_dir() -> Path:
    override = os.environ.get("DOPPEL_CACHE_DIR")
    return Path(override) if override else Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def default_models_dir() -> Path:
    if is_portable_install():
        return APP_ROOT / "models"
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)) / "models"
