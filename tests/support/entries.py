"""Catalog entries for test blobs served from the loopback file server."""

from __future__ import annotations

import hashlib
import os

from app.models.catalog import Catalog, Kind, License, ModelEntry, Sources, TensorSpec


def blob(size: int, seed: int = 0) -> bytes:
    """Incompressible test bytes, different per seed."""
    return hashlib.sha256(str(seed).encode()).digest() + os.urandom(size - 32)


def entry_for(model_id: str, data: bytes, urls: list[str], **overrides: object) -> ModelEntry:
    fields: dict[str, object] = {
        "id": model_id,
        "name": f"Test blob {model_id}",
        "kind": Kind.DETECTOR,
        "family": "test",
        "file": f"{model_id}.onnx",
        "size": len(data),
        "size_exact": True,
        "sha256": hashlib.sha256(data).hexdigest(),
        "verified": True,
        "urls": tuple(urls),
        "license": License(name="test", commercial_use=True),
        "inputs": (TensorSpec(name="x", shape=(1,), dtype="float32"),),
        "outputs": (TensorSpec(name="y", shape=(1,), dtype="float32"),),
        "layout": "none",
        "colour": "none",
        "normalisation": None,
        "output_range": "test",
        "alignment": "none",
        "input_size": None,
        "precision": "fp32",
        "sources": Sources(sha256=("test",), urls=("test",), size="test", spec=("test",)),
    }
    fields.update(overrides)
    return ModelEntry.model_validate(fields)


def catalog_of(*entries: ModelEntry) -> Catalog:
    return Catalog(entries)
