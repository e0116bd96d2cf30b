"""What is on disk in a models folder, checked against the catalog's hashes.

States: present (the catalog's SHA-256), stand-in (a generated file listed with its own hash in the
folder's stand-in manifest), corrupt (any other bytes), partial (only a .part left by an interrupted
download), missing. Hashes are cached per (size, mtime) in a small JSON file so listing is instant;
`verify` re-hashes everything.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from app.core.errors import CatalogError
from app.models.catalog import Catalog, ModelEntry

log = logging.getLogger(__name__)

HASH_CACHE_FILE = ".doppel-hashes.json"
STANDIN_MANIFEST = "standins.json"
PART_SUFFIX = ".part"
_CHUNK = 1 << 20


class ModelState(StrEnum):
    PRESENT = "present"
    STANDIN = "stand-in"
    CORRUPT = "corrupt"
    PARTIAL = "partial"
    MISSING = "missing"


@dataclass(frozen=True)
class ModelStatus:
    entry: ModelEntry
    state: ModelState
    path: Path
    bytes_on_disk: int

    @property
    def usable(self) -> bool:
        return self.state in (ModelState.PRESENT, ModelState.STANDIN)


class StandinFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    model_id: str
    sha256: str
    size: int
    behaviour: str  # "spec" (exact tensor spec, generic values) or a behaviour such as "identity"


class StandinManifest(BaseModel):
    """Written by tools/make_standins.py beside the files it generates."""

    model_config = ConfigDict(extra="forbid")
    kind: str = "doppel-standins"
    version: int = 1
    files: dict[str, StandinFile]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class ModelStore:
    """A models folder. Thread-safe: downloads on several threads record hashes here."""

    def __init__(self, root: Path, catalog: Catalog) -> None:
        self.root = root
        self.catalog = catalog
        self._lock = threading.Lock()
        self._standins = self._read_standin_manifest()

    def path_for(self, entry: ModelEntry) -> Path:
        return self.root / entry.file

    def part_path_for(self, entry: ModelEntry) -> Path:
        return self.root / (entry.file + PART_SUFFIX)

    def status(self, entry: ModelEntry, rehash: bool = False) -> ModelStatus:
        path = self.path_for(entry)
        if not path.is_file():
            part = self.part_path_for(entry)
            if part.is_file():
                return ModelStatus(entry, ModelState.PARTIAL, part, part.stat().st_size)
            return ModelStatus(entry, ModelState.MISSING, path, 0)
        size = path.stat().st_size
        if entry.size_exact and size != entry.size and entry.file not in self._standins:
            return ModelStatus(entry, ModelState.CORRUPT, path, size)
        digest = self.file_hash(path, rehash=rehash)
        if self._is_standin(entry, digest):
            state = ModelState.STANDIN
        elif digest == entry.sha256:
            state = ModelState.PRESENT
        else:
            state = ModelState.CORRUPT
        return ModelStatus(entry, state, path, size)

    def statuses(self, rehash: bool = False) -> list[ModelStatus]:
        return [self.status(entry, rehash=rehash) for entry in self.catalog]

    def file_hash(self, path: Path, rehash: bool = False) -> str:
        """SHA-256 of a file in this folder, from the cache unless the file changed or rehash is set."""
        stat = path.stat()
        key = path.name
        stamp = [stat.st_size, stat.st_mtime_ns]
        if not rehash:
            cached = self._read_hash_cache().get(key)
            if cached and cached.get("stamp") == stamp:
                return str(cached["sha256"])
        digest = sha256_of(path)
        self.remember_hash(path, digest)
        return digest

    def remember_hash(self, path: Path, digest: str) -> None:
        stat = path.stat()
        with self._lock:
            cache = self._read_hash_cache()
            cache[path.name] = {"stamp": [stat.st_size, stat.st_mtime_ns], "sha256": digest}
            self._write_hash_cache(cache)

    def standin_entries(self) -> list[ModelEntry]:
        """Behavioural stand-ins (e.g. a swapper returning its target crop) as extra, clearly named entries."""
        extra = []
        for file_name, info in self._standins.items():
            base = self.catalog.get(info.model_id) if info.model_id in self.catalog else None
            if base is None or file_name == base.file:
                continue  # the main file (spec or compute stand-in) is the model's own entry

            extra.append(
                base.model_copy(
                    update={
                        "id": f"{base.id}@{info.behaviour}",
                        "name": f"STAND-IN ({info.behaviour}) for {base.name}",
                        "file": file_name,
                        "sha256": info.sha256,
                        "size": info.size,
                        "size_exact": True,
                        "urls": ("http://127.0.0.1/stand-ins-are-generated-not-downloaded",),
                        "default": False,
                        "notes": "Generated by tools/make_standins.py for tests; not a real model.",
                    }
                )
            )
        return extra

    def _is_standin(self, entry: ModelEntry, digest: str) -> bool:
        info = self._standins.get(entry.file)
        base_id = entry.id.split("@", 1)[0]  # behavioural variants are named "<id>@<behaviour>"
        return info is not None and info.model_id == base_id and info.sha256 == digest

    def _read_standin_manifest(self) -> dict[str, StandinFile]:
        path = self.root / STANDIN_MANIFEST
        if not path.is_file():
            return {}
        try:
            return StandinManifest.model_validate_json(path.read_text(encoding="utf-8")).files
        except (OSError, ValidationError) as exc:
            raise CatalogError(f"Stand-in manifest {path} is invalid: {exc}") from exc

    def _read_hash_cache(self) -> dict[str, dict[str, object]]:
        path = self.root / HASH_CACHE_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, json.JSONDecodeError):
            log.warning("Ignoring unreadable hash cache %s; files will be re-hashed", path)
            return {}
        return data if isinstance(data, dict) else {}

    def _write_hash_cache(self, cache: dict[str, dict[str, object]]) -> None:
        path = self.root / HASH_CACHE_FILE
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(cache, indent=1, sort_keys=True), encoding="utf-8")
            tmp.replace(path)
        except OSError as exc:  # a read-only models folder still works, only slower
            log.warning("Cannot write hash cache %s: %s", path, exc)
