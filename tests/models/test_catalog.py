"""The built-in catalog: complete, well-formed, and honest about what it does not know."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.core.errors import CatalogError, UnknownModelError
from app.models.catalog import Kind, load_catalog, read_entries

CATALOG = load_catalog()

REQUIRED_FAMILIES = {
    Kind.DETECTOR: {"scrfd", "retinaface", "yolov8face", "yunet"},
    Kind.LANDMARKER: {"2dfan4", "insightface_106", "liveportrait_203", "facemesh_478", "fan_68_5"},
    Kind.RECOGNISER: {"arcface"},
    Kind.SWAPPER: {"inswapper", "simswap", "ghostface", "instyleswapper", "hyperswap"},
    Kind.RESTORER: {"gfpgan", "codeformer", "gpen", "restoreformer"},
    Kind.MASK: {"occluder", "xseg", "bisenet"},
    Kind.UPSCALER: {"realesrgan"},
    Kind.ANALYSER: {"open_nsfw", "yolo_nsfw"},
}


def test_catalog_is_large_enough() -> None:
    assert len(CATALOG) >= 35


@pytest.mark.parametrize("kind", list(REQUIRED_FAMILIES))
def test_every_required_family_is_present(kind: Kind) -> None:
    families = {e.family for e in CATALOG if e.kind is kind}
    assert REQUIRED_FAMILIES[kind] <= families


def test_required_model_variants() -> None:
    ids = set(CATALOG.ids())
    assert {"scrfd_2.5g", "scrfd_10g", "retinaface_10g", "yolov8n_face", "yunet_n_640"} <= ids
    assert {"inswapper_128", "inswapper_128_fp16", "simswap_256", "simswap_512", "hyperswap_1a_256"} <= ids
    assert {"ghostface_v1", "ghostface_v2", "ghostface_v3"} <= ids
    assert {"gpen_bfr_256", "gpen_bfr_512", "gpen_bfr_1024", "gpen_bfr_2048", "gfpgan_1.4"} <= ids
    assert {"realesrgan_x2plus", "realesrgan_x4plus"} <= ids


@pytest.mark.parametrize("entry", list(CATALOG), ids=lambda e: e.id)
def test_entry_is_complete(entry) -> None:
    assert all(url.startswith("https://") for url in entry.urls)
    assert len(entry.sha256) == 64
    assert entry.size > 0 and entry.license.name
    assert entry.inputs and entry.outputs
    assert entry.sources.sha256, "every hash says where it came from"
    assert entry.sources.urls and entry.sources.spec and entry.sources.size
    if entry.verified:
        assert len(entry.sources.sha256) >= 2, "verified means two sources state the hash"


def test_files_are_unique_so_one_folder_holds_all() -> None:
    files = [e.file for e in CATALOG]
    assert len(files) == len(set(files))


def test_requirements_resolve_transitively() -> None:
    chosen = [e.id for e in CATALOG.with_requirements(["inswapper_128_fp16"])]
    assert chosen == ["inswapper_128_fp16", "arcface_w600k_r50"]


def test_default_set_can_swap_a_face() -> None:
    kinds = {e.kind for e in CATALOG.with_requirements(e.id for e in CATALOG.defaults())}
    assert {Kind.DETECTOR, Kind.RECOGNISER, Kind.SWAPPER} <= kinds


def test_unknown_id_suggests_close_ids() -> None:
    with pytest.raises(UnknownModelError, match="did you mean: .*inswapper_128"):
        CATALOG.get("inswapper")


def test_malformed_catalog_file_names_file_and_entry(tmp_path: Path) -> None:
    good = CATALOG.get("scrfd_10g").model_dump(mode="json")
    bad = dict(good, id="broken", sha256="abc")
    path = tmp_path / "mine.json"
    path.write_text(json.dumps([bad]))
    with pytest.raises(CatalogError, match=r"mine\.json, entry 'broken': sha256"):
        read_entries(path)
    path.write_text("{not json")
    with pytest.raises(CatalogError, match="not valid JSON"):
        read_entries(path)


def test_user_catalog_adds_and_overrides(tmp_path: Path) -> None:
    base = CATALOG.get("scrfd_10g").model_dump(mode="json")
    mirror = dict(base, urls=["https://mirror.example.org/det_10g.onnx"])
    extra = dict(base, id="my_detector", file="my_detector.onnx")
    path = tmp_path / "extra.json"
    path.write_text(json.dumps([mirror, extra]))
    merged = load_catalog([path])
    assert merged.get("scrfd_10g").urls == ("https://mirror.example.org/det_10g.onnx",)
    assert "my_detector" in merged and len(merged) == len(CATALOG) + 1
