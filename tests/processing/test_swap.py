"""Swappers, pixel boost and the whole face compositor on stand-ins, with the real SCRFD finding the face.

Behavioural stand-ins make the maths checkable: `identity` returns its target crop (so a swap must give
the frame back up to resampling), `flat` returns one colour (so exactly the masked pixels change).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from skimage import data

from app.core.errors import CatalogError
from app.faces.alignment import invert, warp
from app.faces.detector import FaceDetector
from app.faces.types import Face, unit
from app.inference.runtime import InferenceRuntime
from app.models.catalog import Kind, load_catalog
from app.processing.compositor import FaceCompositor
from app.processing.settings import ColourSettings, MaskSettings, ProcessingSettings, SwapSettings
from app.processing.swapper import Swapper
from tests.support.processing import standin_runtime
from tests.support.real_models import REAL_SCRFD_ID
from tools.make_standins import FLAT_COLOUR, emap_matrix

SWAPPERS = tuple(e.id for e in load_catalog() if e.kind is Kind.SWAPPER)
NEEDED = (
    *SWAPPERS,
    "arcface_w600k_r50",
    "arcface_w600k_r50_ff",
    "arcface_simswap",
    "arcface_ghost",
    "crossface_simswap",
    "crossface_ghost",
)


@pytest.fixture(scope="module")
def runtime(test_assets: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InferenceRuntime]:
    runtime = standin_runtime(test_assets, tmp_path_factory.mktemp("swap"), NEEDED)
    yield runtime
    runtime.close()


@pytest.fixture(scope="module")
def astronaut(runtime: InferenceRuntime) -> tuple[torch.Tensor, Face]:
    frame = torch.from_numpy(data.astronaut().copy())
    faces = FaceDetector(runtime, REAL_SCRFD_ID).detect(frame)
    assert len(faces) == 1
    return frame, faces[0]


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = (a.float() - b.float()).pow(2).mean().item()
    return float("inf") if mse == 0 else 10 * torch.log10(torch.tensor(255.0**2 / mse)).item()


def swap_one(runtime: InferenceRuntime, frame: torch.Tensor, face: Face, settings: ProcessingSettings):  # type: ignore[no-untyped-def]
    compositor = FaceCompositor(runtime, settings)
    latent = compositor.swapper.latent(torch.randn(512))
    out = frame.clone()
    return out, compositor.composite(frame, out, face, latent)


def test_identity_swap_gives_the_frame_back(
    runtime: InferenceRuntime, astronaut: tuple[torch.Tensor, Face]
) -> None:
    frame, face = astronaut
    settings = ProcessingSettings(swap=SwapSettings(swapper="inswapper_128_fp16@identity"))
    out, _ = swap_one(runtime, frame, face, settings)
    assert psnr(out, frame) >= 38.0
    assert not torch.equal(out, frame)  # it did paste (resampled) pixels


@pytest.mark.parametrize("boost", [256, 512])
def test_pixel_boost_with_the_identity_model_reproduces_the_crop(
    runtime: InferenceRuntime, astronaut: tuple[torch.Tensor, Face], boost: int
) -> None:
    frame, face = astronaut
    settings = ProcessingSettings(swap=SwapSettings(swapper="inswapper_128_fp16@identity", pixel_boost=boost))
    out, composite = swap_one(runtime, frame, face, settings)
    assert composite.target.shape[-1] == boost
    assert torch.allclose(composite.result, composite.target, atol=1e-3)
    assert psnr(out, frame) >= 38.0


def test_flat_swap_changes_exactly_the_masked_pixels(
    runtime: InferenceRuntime, astronaut: tuple[torch.Tensor, Face]
) -> None:
    frame, face = astronaut
    settings = ProcessingSettings(
        swap=SwapSettings(swapper="inswapper_128_fp16@flat"), mask=MaskSettings(feather=10.0)
    )
    out, composite = swap_one(runtime, frame, face, settings)
    size = (int(frame.shape[0]), int(frame.shape[1]))
    coverage = warp(composite.mask.combined, invert(composite.matrix)[None], size)[0, 0]
    changed = (out != frame).any(dim=2)
    assert not changed[coverage == 0].any()  # outside the mask: byte for byte the input
    inside = coverage > 0.999
    assert inside.sum() > 2000 and changed[inside].float().mean() > 0.99
    colour = torch.tensor(FLAT_COLOUR)
    assert (out[inside].float() - colour).abs().max() <= 1.0  # the stand-in's flat colour


@pytest.mark.parametrize("model_id", SWAPPERS)
def test_every_swapper_family_runs_its_stand_in(
    runtime: InferenceRuntime, astronaut: tuple[torch.Tensor, Face], model_id: str
) -> None:
    frame, face = astronaut
    swapper = Swapper(runtime, SwapSettings(swapper=model_id))
    latent = swapper.latent(torch.randn(512))
    assert latent.shape == (1, 512)
    if swapper.family.UNIT_LATENT:
        assert latent.norm().item() == pytest.approx(1.0, abs=1e-4)
    _, composite = swap_one(runtime, frame, face, ProcessingSettings(swap=SwapSettings(swapper=model_id)))
    assert composite.result.shape == (1, 3, swapper.crop_side, swapper.crop_side)
    assert torch.isfinite(composite.result).all()
    if swapper.entry.family == "hyperswap":
        assert "swapper" in composite.mask.parts  # its own face mask joins the product


def test_inswapper_latent_goes_through_the_emap(runtime: InferenceRuntime) -> None:
    swapper = Swapper(runtime, SwapSettings(swapper="inswapper_128"))
    embedding = torch.randn(512) * 20
    expected = unit(unit(embedding)[None] @ torch.from_numpy(emap_matrix(swapper.entry)))
    assert torch.allclose(swapper.latent(embedding), expected, atol=1e-5)
    # InStyleSwapper borrows inswapper_128_fp16's emap.
    instyle = Swapper(runtime, SwapSettings(swapper="instyleswapper_256_a"))
    donor = runtime.store.catalog.get("inswapper_128_fp16")
    borrowed = unit(unit(embedding)[None] @ torch.from_numpy(emap_matrix(donor)))
    assert torch.allclose(instyle.latent(embedding), borrowed, atol=1e-5)


def test_simswap_256_reads_its_embedding_through_the_converter(runtime: InferenceRuntime) -> None:
    swapper = Swapper(runtime, SwapSettings(swapper="simswap_256"))
    assert swapper.recogniser_id == "arcface_w600k_r50_ff"
    embedding = torch.randn(512)
    converted = runtime.run_ordered("crossface_simswap", embedding[None])[0]
    assert torch.allclose(swapper.latent(embedding), unit(converted.reshape(1, -1)), atol=1e-5)


def test_strength_moves_the_latent_toward_the_target(runtime: InferenceRuntime) -> None:
    swapper = Swapper(runtime, SwapSettings(swapper="inswapper_128"))
    source, target = unit(torch.randn(1, 512)), unit(torch.randn(1, 512))
    assert torch.allclose(swapper.blend_latents(source, target, 1.0), source, atol=1e-6)
    assert torch.allclose(swapper.blend_latents(source, target, 0.0), target, atol=1e-6)
    half = swapper.blend_latents(source, target, 0.5)
    assert half.norm().item() == pytest.approx(1.0, abs=1e-5)
    assert (half @ source.T).item() == pytest.approx((half @ target.T).item(), abs=1e-5)


def test_strength_below_one_embeds_the_target_face(
    runtime: InferenceRuntime, astronaut: tuple[torch.Tensor, Face]
) -> None:
    frame, face = astronaut
    settings = ProcessingSettings(swap=SwapSettings(swapper="inswapper_128", strength=0.0))
    compositor = FaceCompositor(runtime, settings)
    source = compositor.swapper.latent(torch.randn(512))
    own = compositor.target_latent(frame, face, source)
    assert not torch.allclose(own, source)
    assert torch.allclose(compositor.target_latent(frame, face, torch.zeros_like(source)), own, atol=1e-5)


def test_passes_rerun_the_swapper(runtime: InferenceRuntime, astronaut: tuple[torch.Tensor, Face]) -> None:
    frame, face = astronaut
    one = swap_one(runtime, frame, face, ProcessingSettings(swap=SwapSettings(swapper="simswap_512")))[1]
    two = swap_one(
        runtime, frame, face, ProcessingSettings(swap=SwapSettings(swapper="simswap_512", passes=2))
    )[1]
    assert not torch.allclose(one.result, two.result)


def test_a_non_swapper_is_refused_by_name(runtime: InferenceRuntime) -> None:
    with pytest.raises(CatalogError, match="arcface_w600k_r50 is a recogniser"):
        Swapper(runtime, SwapSettings(swapper="arcface_w600k_r50"))


def test_colour_transfer_in_the_compositor_moves_the_flat_face_toward_the_target(
    runtime: InferenceRuntime, astronaut: tuple[torch.Tensor, Face]
) -> None:
    frame, face = astronaut
    plain = swap_one(
        runtime, frame, face, ProcessingSettings(swap=SwapSettings(swapper="inswapper_128_fp16@flat"))
    )
    toned = swap_one(
        runtime,
        frame,
        face,
        ProcessingSettings(
            swap=SwapSettings(swapper="inswapper_128_fp16@flat"), colour=ColourSettings(strength=1.0)
        ),
    )
    target_mean = plain[1].target.mean(dim=(2, 3))
    assert (toned[1].result.mean(dim=(2, 3)) - target_mean).abs().sum() < (
        plain[1].result.mean(dim=(2, 3)) - target_mean
    ).abs().sum()
