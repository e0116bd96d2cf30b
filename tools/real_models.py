"""The real SCRFD detector from the scrfd==0.3.0 sdist (tools/fetch_test_assets.py) as a catalog entry
and store, for the tests and the benchmark.

It is the InsightFace 2.5G-KPS export with output names of its own (score_8 …), so it gets an entry
of its own rather than posing as a catalog model.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from app.models.catalog import Catalog, TensorSpec, load_catalog
from app.models.store import ModelStore
from tools.make_standins import make_standins

REAL_SCRFD_ID = "scrfd_pypi_2.5g"


def real_scrfd_store(assets: Path, models_dir: Path, standin_ids: tuple[str, ...] = ()) -> ModelStore:
    """A store holding the real SCRFD detector, plus stand-ins of the catalog models `standin_ids`."""
    models_dir.mkdir(parents=True, exist_ok=True)
    target = models_dir / "scrfd.onnx"
    if not target.exists():
        shutil.copyfile(assets / "scrfd.onnx", target)
    data = target.read_bytes()
    base = load_catalog().get("scrfd_2.5g")
    outputs = tuple(
        TensorSpec(name=f"{kind}_{stride}", shape=(1, count, width), dtype="float32")
        for kind, width in (("score", 1), ("bbox", 4), ("kps", 10))
        for stride, count in ((8, 12800), (16, 3200), (32, 800))
    )
    entry = base.model_copy(
        update={
            "id": REAL_SCRFD_ID,
            "name": "SCRFD 2.5G-KPS (scrfd==0.3.0 sdist; test asset)",
            "file": "scrfd.onnx",
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "inputs": (TensorSpec(name="input.1", shape=(1, 3, 640, 640), dtype="float32"),),
            "outputs": outputs,
            "default": False,
            "requires": (),
        }
    )
    catalog = load_catalog()
    if standin_ids:
        make_standins(models_dir, catalog, list(standin_ids))
    return ModelStore(models_dir, Catalog([entry, *(catalog.get(i) for i in standin_ids)]))
