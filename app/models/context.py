"""What every command needs: settings, the catalog, and the models folder, resolved once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.core.settings import Settings, load_settings
from app.models.catalog import Catalog, load_catalog
from app.models.location import ModelsDir, resolve_models_dir
from app.models.store import ModelStore


@dataclass(frozen=True)
class AppContext:
    settings: Settings
    catalog: Catalog
    models_dir: ModelsDir
    store: ModelStore


def build_context(models_dir: Path | None = None, extra_catalogs: list[Path] | None = None) -> AppContext:
    settings = load_settings()
    catalog = load_catalog([*settings.extra_catalogs, *(extra_catalogs or [])])
    location = resolve_models_dir(models_dir, settings)
    store = ModelStore(location.path, catalog)
    # A folder of generated stand-ins also offers their behavioural variants, under their own ids.
    standins = store.standin_entries()
    if standins:
        catalog = catalog.merged(standins)
        store = ModelStore(location.path, catalog)
    return AppContext(settings, catalog, location, store)
