"""The model catalog: every model Doppel can use, as validated data.

The entries live in JSON files under `catalog_data/` (one file per kind). Adding a model is adding an
entry; no code path names a model. Each entry records where its URL, hash, size and tensor spec came
from (`sources`), so a maintainer can re-check any fact.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from app.core.errors import CatalogError, UnknownModelError
from app.models.choices import Kind as Kind  # re-exported from its light home

CATALOG_DIR = Path(__file__).with_name("catalog_data")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_ID = re.compile(r"^[a-z0-9][a-z0-9_.\-]*$")


DType = Literal["float32", "float16", "float64", "int64", "int32", "uint8", "bool"]
Dim = int | str  # a static size, or the name of a dynamic axis ("batch", "height")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TensorSpec(_Frozen):
    # None: the publisher's graph name is not public yet. The runtime then binds this tensor by
    # its position in the graph and logs the name it found, so the catalog can be completed.
    name: str | None
    shape: tuple[Dim, ...]
    dtype: DType

    @property
    def is_static(self) -> bool:
        return all(isinstance(d, int) for d in self.shape)


class License(_Frozen):
    name: str
    commercial_use: bool
    notes: str = ""


class Normalisation(_Frozen):
    """Applied to pixel values in 0..255 and the entry's colour order: (x - mean) / std."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    @model_validator(mode="after")
    def _same_length(self) -> Normalisation:
        if len(self.mean) != len(self.std) or any(s == 0 for s in self.std):
            raise ValueError("mean and std must have the same length and std no zeros")
        return self


class Sources(_Frozen):
    """Where each fact came from: public repositories, paths and what they say."""

    sha256: tuple[str, ...]
    urls: tuple[str, ...]
    size: str
    spec: tuple[str, ...]


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url_allowed(url: str) -> None:
    """HTTPS only; plain HTTP is accepted for loopback addresses (local tests, local mirrors)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and is_loopback_host(parts.hostname):
        return
    raise ValueError(f"'{url}' is not an HTTPS URL (plain HTTP is only allowed to loopback)")


class ModelEntry(_Frozen):
    id: str
    name: str
    kind: Kind
    family: str
    file: str
    size: int = Field(gt=0, description="bytes")
    size_exact: bool = Field(description="false: size is a published rounded figure, used for planning only")
    sha256: str
    verified: bool = Field(description="hash confirmed by the publisher's own list or by two sources")
    urls: tuple[str, ...] = Field(min_length=1)
    license: License
    inputs: tuple[TensorSpec, ...] = Field(min_length=1)
    outputs: tuple[TensorSpec, ...] = Field(min_length=1)
    # Graph outputs an export leaks (intermediate tensors): computed, bound to scratch space, ignored.
    auxiliary_outputs: tuple[str, ...] = ()
    layout: Literal["NCHW", "NHWC", "none"]
    colour: Literal["RGB", "BGR", "GRAY", "none"]
    normalisation: Normalisation | None
    output_range: str
    alignment: str
    input_size: int | None
    precision: Literal["fp32", "fp16"]
    provider_hint: Literal["auto", "tensorrt", "cuda", "cpu"] = "auto"
    cuda_graphs: bool | None = None
    default: bool = False
    requires: tuple[str, ...] = ()
    notes: str = ""
    sources: Sources

    @field_validator("id")
    @classmethod
    def _id_form(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError(f"id '{value}' must be lowercase letters, digits, '_', '.', '-'")
        return value

    @field_validator("file")
    @classmethod
    def _plain_file_name(cls, value: str) -> str:
        if Path(value).name != value or value.startswith("."):
            raise ValueError(f"file '{value}' must be a plain file name")
        return value

    @field_validator("sha256")
    @classmethod
    def _hex_digest(cls, value: str) -> str:
        if not _SHA256.match(value):
            raise ValueError(f"sha256 '{value}' is not 64 lowercase hex digits")
        return value

    @field_validator("urls")
    @classmethod
    def _secure_urls(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for url in value:
            check_url_allowed(url)
        return value

    @property
    def non_commercial(self) -> bool:
        return not self.license.commercial_use


class Catalog:
    """An ordered, id-indexed set of entries with their cross-references checked."""

    def __init__(self, entries: Iterable[ModelEntry]) -> None:
        self._entries: dict[str, ModelEntry] = {}
        for entry in entries:
            if entry.id in self._entries:
                raise CatalogError(f"Model id '{entry.id}' appears twice in the catalog")
            self._entries[entry.id] = entry
        for entry in self._entries.values():
            for needed in entry.requires:
                if needed not in self._entries:
                    raise CatalogError(f"Model '{entry.id}' requires '{needed}', which is not in the catalog")

    def __iter__(self) -> Iterator[ModelEntry]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, model_id: object) -> bool:
        return model_id in self._entries

    def get(self, model_id: str) -> ModelEntry:
        try:
            return self._entries[model_id]
        except KeyError:
            raise UnknownModelError(model_id, list(self._entries)) from None

    def ids(self) -> list[str]:
        return list(self._entries)

    def defaults(self) -> list[ModelEntry]:
        return [e for e in self if e.default]

    def default_for(self, kind: Kind, flag: str) -> str:
        """The id of the catalog's default model of a kind; `flag` names the option that picks another."""
        found = next((e.id for e in self if e.kind is kind and e.default), None)
        if found is None:
            raise CatalogError(f"The catalog names no default {kind.value}: choose one with {flag} ID")
        return found

    def with_requirements(self, model_ids: Iterable[str]) -> list[ModelEntry]:
        """The given models and, transitively, every model they require, without duplicates."""
        ordered: dict[str, ModelEntry] = {}
        pending = list(model_ids)
        while pending:
            entry = self.get(pending.pop(0))
            if entry.id not in ordered:
                ordered[entry.id] = entry
                pending.extend(entry.requires)
        return list(ordered.values())

    def merged(self, extra: Iterable[ModelEntry]) -> Catalog:
        """This catalog with `extra` entries added; an extra entry with a known id replaces it."""
        entries = dict(self._entries)
        for entry in extra:
            entries[entry.id] = entry
        return Catalog(entries.values())


def read_entries(path: Path) -> list[ModelEntry]:
    """Parse one catalog file (a JSON array of entries); errors name the file and the entry."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CatalogError(f"Cannot read catalog file {path}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise CatalogError(f"Catalog file {path} is not valid JSON: {exc}") from exc
    if not isinstance(raw, list):
        raise CatalogError(f"Catalog file {path} must hold a JSON array of model entries")
    entries = []
    for index, item in enumerate(raw):
        label = item.get("id", f"#{index}") if isinstance(item, dict) else f"#{index}"
        try:
            entries.append(ModelEntry.model_validate(item))
        except ValidationError as exc:
            errors = exc.errors()
            problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in errors[:3])
            if len(errors) > 3:
                problems += f" (and {len(errors) - 3} more)"
            raise CatalogError(f"Catalog file {path}, entry '{label}': {problems}") from exc
    return entries


def load_catalog(extra_files: Iterable[Path] = ()) -> Catalog:
    """The built-in catalog, plus entries from user catalog files (which may override built-ins)."""
    kind_order = list(Kind)
    entries = [e for path in sorted(CATALOG_DIR.glob("*.json")) for e in read_entries(path)]
    builtin = Catalog(sorted(entries, key=lambda e: kind_order.index(e.kind)))  # pipeline order
    extra = [e for path in extra_files for e in read_entries(path)]
    return builtin.merged(extra) if extra else builtin
