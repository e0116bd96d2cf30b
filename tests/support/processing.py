"""A runtime over the real SCRFD detector plus stand-ins (and their behavioural variants) of catalog
models, as the swap pipeline's tests need."""

from __future__ import annotations

from pathlib import Path

from app.inference.runtime import InferenceRuntime
from app.models.store import ModelStore
from app.pipeline.settings import AnalysisSettings, PipelineSettings
from app.processing.settings import ProcessingSettings, SwapSettings
from tests.support.real_models import REAL_SCRFD_ID, real_scrfd_store


def standin_store(assets: Path, models_dir: Path, standin_ids: tuple[str, ...]) -> ModelStore:
    store = real_scrfd_store(assets, models_dir, standin_ids)
    catalog = store.catalog.merged(store.standin_entries())  # ID@identity, ID@flat, ID@regions, …
    return ModelStore(models_dir, catalog)


def standin_runtime(assets: Path, folder: Path, standin_ids: tuple[str, ...]) -> InferenceRuntime:
    return InferenceRuntime(
        standin_store(assets, folder / "models", standin_ids), cache_root=folder / "cache"
    )


def cli_models(assets: Path, models_dir: Path, standin_ids: tuple[str, ...]) -> Path:
    """A models folder for the CLI (real SCRFD + stand-ins) and the extra catalog file naming the real
    SCRFD entry, to pass as `--models-dir DIR --catalog FILE --detector scrfd_pypi_2.5g`."""
    store = real_scrfd_store(assets, models_dir, standin_ids)
    catalog_file = models_dir.parent / "test-catalog.json"
    entry = store.catalog.get(REAL_SCRFD_ID)
    catalog_file.write_text("[" + entry.model_dump_json() + "]", encoding="utf-8")
    return catalog_file


def flat_swap_settings() -> PipelineSettings:
    """The real detector and the `flat` swapper stand-in (exactly the masked pixels change)."""
    return PipelineSettings(
        analysis=AnalysisSettings(detector=REAL_SCRFD_ID),
        processing=ProcessingSettings(swap=SwapSettings(swapper="inswapper_128_fp16@flat")),
    )
