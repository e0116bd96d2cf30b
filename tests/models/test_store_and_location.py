"""Model states on disk, the hash cache, settings and the models-folder precedence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.core.errors import SettingsError
from app.core.settings import Settings, load_settings, save_settings
from app.models.location import resolve_models_dir
from app.models.store import HASH_CACHE_FILE, ModelState, ModelStore
from tests.support.entries import blob, catalog_of, entry_for


def test_states(tmp_path: Path) -> None:
    data = blob(4096)
    entry = entry_for("m", data, ["https://example.org/m.onnx"])
    store = ModelStore(tmp_path, catalog_of(entry))
    assert store.status(entry).state is ModelState.MISSING
    store.part_path_for(entry).write_bytes(data[:100])
    partial = store.status(entry)
    assert partial.state is ModelState.PARTIAL and partial.bytes_on_disk == 100
    store.path_for(entry).write_bytes(data)
    assert store.status(entry).state is ModelState.PRESENT
    store.path_for(entry).write_bytes(data[:-1] + b"?")
    assert store.status(entry).state is ModelState.CORRUPT


def test_hash_cache_is_used_and_invalidated_by_changes(tmp_path: Path) -> None:
    data = blob(4096, seed=1)
    entry = entry_for("h", data, ["https://example.org/h.onnx"])
    store = ModelStore(tmp_path, catalog_of(entry))
    store.path_for(entry).write_bytes(data)
    assert store.status(entry).state is ModelState.PRESENT
    cache = json.loads((tmp_path / HASH_CACHE_FILE).read_text())
    assert cache["h.onnx"]["sha256"] == entry.sha256
    # Same size, other bytes, new mtime: the cache must not hide the corruption.
    path = store.path_for(entry)
    path.write_bytes(bytes(len(data)))
    assert store.status(entry).state is ModelState.CORRUPT


def test_models_dir_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(models_dir=tmp_path / "from-settings")
    assert resolve_models_dir(None, Settings()).origin == "default"
    assert resolve_models_dir(None, settings).path == tmp_path / "from-settings"
    monkeypatch.setenv("DOPPEL_MODELS_DIR", str(tmp_path / "from-env"))
    assert resolve_models_dir(None, settings).path == tmp_path / "from-env"
    chosen = resolve_models_dir(tmp_path / "from-cli", settings)
    assert chosen.path == tmp_path / "from-cli" and chosen.origin == "--models-dir"


def test_default_models_dir_is_portable_in_a_checkout() -> None:
    location = resolve_models_dir(None, Settings())
    assert location.path == Path(__file__).resolve().parents[2] / "models"


def test_settings_round_trip_and_refuse_newer_versions(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    assert load_settings(path) == Settings()
    save_settings(Settings(models_dir=tmp_path / "m"), path)
    assert load_settings(path).models_dir == tmp_path / "m"
    path.write_text(json.dumps({"version": 99}))
    with pytest.raises(SettingsError, match=r"settings\.json has version 99"):
        load_settings(path)
    path.write_text("{")
    with pytest.raises(SettingsError, match="cannot be read"):
        load_settings(path)
