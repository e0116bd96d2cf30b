"""Restorers, mask models and the content analyser on behavioural stand-ins whose answers are known."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage import data

from app.core.errors import CatalogError
from app.faces.detector import FaceDetector
from app.faces.types import Face
from app.inference.runtime import InferenceRuntime
from app.models.catalog import Kind, load_catalog
from app.processing.compositor import FaceCompositor
from app.processing.content import ContentAnalyser
from app.processing.masks.masker import Masker, overlay
from app.processing.settings import (
    PARSER_CLASSES,
    MaskSettings,
    ProcessingSettings,
    RestoreSettings,
    SwapSettings,
)
from tests.support.processing import standin_runtime
from tests.support.real_models import REAL_SCRFD_ID
from tools.make_standins import cells_to_pixels, parser_label_map, visible_cells

RESTORERS = tuple(e.id for e in load_catalog() if e.kind is Kind.RESTORER)
MASKS = tuple(e.id for e in load_catalog() if e.kind is Kind.MASK)
ANALYSERS = ("open_nsfw", "nsfw_yolo_11m")


@pytest.fixture(scope="module")
def runtime(test_assets: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InferenceRuntime]:
    ids = (*RESTORERS, *MASKS, *ANALYSERS, "inswapper_128_fp16", "arcface_w600k_r50")
    runtime = standin_runtime(test_assets, tmp_path_factory.mktemp("models"), ids)
    yield runtime
    runtime.close()


@pytest.fixture(scope="module")
def astronaut(runtime: InferenceRuntime) -> tuple[torch.Tensor, Face]:
    frame = torch.from_numpy(data.astronaut().copy())
    return frame, FaceDetector(runtime, REAL_SCRFD_ID).detect(frame)[0]


# -- restorers ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("restorer", [r for r in RESTORERS if r != "gpen_bfr_2048"])
def test_identity_restorer_gives_the_swapped_face_back(
    runtime: InferenceRuntime, astronaut: tuple[torch.Tensor, Face], restorer: str
) -> None:
    """Laid over the FFHQ crop, restored (here: unchanged) and warped back, the swap comes back."""
    frame, face = astronaut
    settings = ProcessingSettings(
        swap=SwapSettings(swapper="inswapper_128_fp16@identity", pixel_boost=256),
        restore=RestoreSettings(restorer=f"{restorer}@identity", blend=1.0),
    )
    compositor = FaceCompositor(runtime, settings)
    out = frame.clone()
    composite = compositor.composite(frame, out, face, compositor.swapper.latent(torch.randn(512)))
    inner = slice(40, 216)  # away from the crop's border, where the warps have no data to resample
    error = (composite.result - composite.target)[..., inner, inner].abs().mean().item()
    assert error < 4.0, error


def test_restore_blend_mixes_and_codeformer_takes_its_fidelity(
    runtime: InferenceRuntime, astronaut: tuple[torch.Tensor, Face]
) -> None:
    frame, face = astronaut
    results = {}
    for blend in (0.0, 1.0):
        settings = ProcessingSettings(
            swap=SwapSettings(swapper="inswapper_128_fp16@flat"),
            restore=RestoreSettings(restorer="codeformer", blend=blend, fidelity=0.3),
        )
        compositor = FaceCompositor(runtime, settings)
        composite = compositor.composite(
            frame, frame.clone(), face, compositor.swapper.latent(torch.randn(512))
        )
        results[blend] = composite.result
    assert not torch.allclose(results[0.0], results[1.0])  # the spec stand-in answers something else


def test_a_swapper_is_not_a_restorer(runtime: InferenceRuntime) -> None:
    from app.processing.restorer import Restorer

    with pytest.raises(CatalogError, match="not a face restorer"):
        Restorer(runtime, RestoreSettings(restorer="inswapper_128_fp16"))


# -- masks --------------------------------------------------------------------------------------------


def _expected(cells: np.ndarray, side: int) -> torch.Tensor:
    return torch.from_numpy(cells_to_pixels(cells.astype(np.float32), side, side))


@pytest.mark.parametrize("model_id", ["occluder", "xseg", "xseg_1"])
def test_occlusion_models_cut_out_what_covers_the_face(runtime: InferenceRuntime, model_id: str) -> None:
    field = "occluder" if model_id == "occluder" else "xseg"
    masker = Masker(runtime, MaskSettings(box=False, **{field: f"{model_id}@regions"}))
    target = torch.rand(1, 3, 256, 256) * 255
    mask = masker.build(target)
    expected = _expected(visible_cells(), 256)
    assert torch.equal(mask.combined[0, 0], expected)


def test_parser_keeps_only_the_chosen_regions(runtime: InferenceRuntime) -> None:
    labels = parser_label_map()
    for regions in (("nose",), ("skin", "upper_lip", "lower_lip"), ("left_eye", "right_eye", "mouth")):
        masker = Masker(
            runtime, MaskSettings(box=False, parser="faceparser_resnet34@regions", regions=regions)
        )
        mask = masker.build(torch.rand(1, 3, 512, 512) * 255).combined[0, 0]
        keep = np.isin(labels, [PARSER_CLASSES.index(r) for r in regions])
        expected = _expected(keep, 512)
        assert (mask - expected).abs().max() < 1e-3, regions


def test_masks_combine_by_product_and_render_for_preview(runtime: InferenceRuntime) -> None:
    settings = MaskSettings(feather=10.0, occluder="occluder@regions", parser="bisenet_resnet_18@regions")
    mask = Masker(runtime, settings).build(torch.rand(1, 3, 128, 128) * 255)
    assert set(mask.parts) == {"box", "occluder@regions", "bisenet_resnet_18@regions"}
    product = mask.parts["box"] * mask.parts["occluder@regions"] * mask.parts["bisenet_resnet_18@regions"]
    assert torch.equal(mask.combined, product)
    preview = overlay(torch.full((1, 3, 128, 128), 200.0), mask.combined)
    assert preview.shape == (128, 128, 3) and preview.dtype == torch.uint8
    assert (preview[80, 80] != 200).any()  # the occluded square (64..96) is tinted
    assert (preview[40, 40] == 200).all()  # the kept eye is not


def test_occluder_hole_survives_paste_back(
    runtime: InferenceRuntime, astronaut: tuple[torch.Tensor, Face]
) -> None:
    frame, face = astronaut
    settings = ProcessingSettings(
        swap=SwapSettings(swapper="inswapper_128_fp16@flat"), mask=MaskSettings(occluder="occluder@regions")
    )
    compositor = FaceCompositor(runtime, settings)
    composite = compositor.composite(frame, frame.clone(), face, compositor.swapper.latent(torch.randn(512)))
    hole = composite.mask.combined[0, 0, 70:90, 70:90]
    assert hole.max() == 0  # inside the occluded square (x, y in 64..96 of 128)


# -- content analyser ---------------------------------------------------------------------------------


def test_two_thirds_of_the_analysers_must_agree(runtime: InferenceRuntime) -> None:
    frame = torch.randint(0, 255, (360, 480, 3), dtype=torch.uint8)
    both = ContentAnalyser(runtime, ["open_nsfw@unsafe", "nsfw_yolo_11m@unsafe"]).check(frame)
    assert both.blocked and both.required == 2
    split = ContentAnalyser(runtime, ["open_nsfw@unsafe", "nsfw_yolo_11m@safe"]).check(frame)
    assert (
        not split.blocked and split.votes["open_nsfw@unsafe"][1] and not split.votes["nsfw_yolo_11m@safe"][1]
    )
    assert ContentAnalyser(runtime, ["nsfw_yolo_11m@unsafe"]).check(frame).blocked
    assert not ContentAnalyser(runtime, ["open_nsfw@safe"]).check(frame).blocked
    three = ContentAnalyser(runtime, ["open_nsfw@unsafe", "nsfw_yolo_11m@unsafe", "open_nsfw@safe"])
    assert three.required == 2 and three.check(frame).blocked


def test_every_catalog_family_has_a_module() -> None:
    """The catalog's family picks the code; a family no module implements would fail at run time."""
    from app.processing.content import FAMILIES as ANALYSER_FAMILIES
    from app.processing.masks.models import FAMILIES as MASK_FAMILIES
    from app.processing.restorers.base import FAMILIES as RESTORER_FAMILIES
    from app.processing.swapper import FAMILIES as SWAPPER_FAMILIES

    implemented = {
        Kind.SWAPPER: SWAPPER_FAMILIES,
        Kind.RESTORER: RESTORER_FAMILIES,
        Kind.MASK: MASK_FAMILIES,
        Kind.ANALYSER: ANALYSER_FAMILIES,
    }
    for entry in load_catalog():
        if entry.kind in implemented:
            assert entry.family in implemented[entry.kind], entry.id
