"""Which folder holds the models: --models-dir, then DOPPEL_MODELS_DIR, then settings, then the default."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from app.core.paths import default_models_dir
from app.core.settings import Settings

ENV_MODELS_DIR = "DOPPEL_MODELS_DIR"


@dataclass(frozen=True)
class ModelsDir:
    path: Path
    origin: str  # "--models-dir", "DOPPEL_MODELS_DIR", "settings" or "default"


def resolve_models_dir(cli_value: Path | None, settings: Settings) -> ModelsDir:
    if cli_value is not None:
        return ModelsDir(cli_value.expanduser().resolve(), "--models-dir")
    env_value = os.environ.get(ENV_MODELS_DIR)
    if env_value:
        return ModelsDir(Path(env_value).expanduser().resolve(), ENV_MODELS_DIR)
    if settings.models_dir is not None:
        return ModelsDir(settings.models_dir.expanduser().resolve(), "settings")
    return ModelsDir(default_models_dir(), "default")
