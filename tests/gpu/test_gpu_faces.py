"""Face analysis on the GPU: pixels and embeddings stay on the device, face geometry (boxes, keypoints,
landmarks: a few hundred numbers) on the CPU, and the answers match the CPU's.

The real SCRFD runs on ONNX Runtime's CUDA provider with the frame on the GPU; landmark and recogniser
stand-ins run the same way. Skipped where ONNX Runtime has no usable CUDA provider (CI has none); run on
the lent GPU machine: `python -m pytest tests/gpu -v`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from app.core.settings import InferenceSettings
from app.faces.detector import DetectionSettings, FaceDetector
from app.faces.identity import Combine, Identity
from app.faces.landmarker import AutoLandmarker, Landmarker
from app.faces.recogniser import Recogniser
from app.faces.selection import SelectionMode, SelectionSettings, select
from app.inference.discovery import discover
from app.inference.providers import Provider
from app.inference.runtime import InferenceRuntime
from app.media.images import read_image
from tests.support.real_models import REAL_SCRFD_ID, real_scrfd_store

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available() or not discover()[Provider.CUDA].usable,
    reason="needs an NVIDIA GPU and onnxruntime-gpu with a usable CUDA provider",
)

STANDINS = ("2dfan4", "2d106det", "fan_68_5", "arcface_w600k_r50", "arcface_w600k_r50_ff")


def _runtime(assets: Path, folder: Path, provider: str) -> InferenceRuntime:
    store = real_scrfd_store(assets, folder / "models", STANDINS)
    settings = InferenceSettings(provider=provider, allow_tf32=False)  # type: ignore[arg-type]
    return InferenceRuntime(store, settings, cache_root=folder / f"cache-{provider}")


@pytest.fixture(scope="module")
def runtimes(
    test_assets: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, InferenceRuntime]]:
    folder = tmp_path_factory.mktemp("gpu-faces")
    made = {provider: _runtime(test_assets, folder, provider) for provider in ("cuda", "cpu")}
    yield made
    for runtime in made.values():
        runtime.close()


def test_solvay_on_the_gpu_matches_the_cpu(runtimes: dict[str, InferenceRuntime], test_assets: Path) -> None:
    frame = read_image(test_assets / "solvay_conference_1927.jpg")
    on_cpu = FaceDetector(runtimes["cpu"], REAL_SCRFD_ID).detect(frame)
    on_gpu = FaceDetector(runtimes["cuda"], REAL_SCRFD_ID).detect(frame.cuda())
    assert abs(len(on_gpu) - 29) <= 1 and len(on_gpu) == len(on_cpu)
    assert not any(face.kps.is_cuda for face in on_gpu)  # geometry lives on the CPU
    gpu_boxes = torch.tensor([f.box for f in on_gpu])
    cpu_boxes = torch.tensor([f.box for f in on_cpu])
    assert (gpu_boxes - cpu_boxes).abs().max() < 1.0


def test_rotated_astronaut_is_found_on_the_gpu(
    runtimes: dict[str, InferenceRuntime], test_assets: Path
) -> None:
    frame = torch.rot90(read_image(test_assets / "astronaut.png"), k=-1, dims=(0, 1)).contiguous().cuda()
    faces = FaceDetector(runtimes["cuda"], REAL_SCRFD_ID, DetectionSettings(rotation="auto")).detect(frame)
    assert len(faces) == 1 and faces[0].rotation in (90, 270)


def test_landmarks_and_embeddings_on_the_gpu_match_the_cpu(
    runtimes: dict[str, InferenceRuntime], test_assets: Path
) -> None:
    frame = read_image(test_assets / "solvay_conference_1927.jpg")
    results = {}
    for provider, device in (("cpu", "cpu"), ("cuda", "cuda")):
        runtime = runtimes[provider]
        on_device = frame.to(device)
        faces = FaceDetector(runtime, REAL_SCRFD_ID).detect(on_device)
        faces = Landmarker(runtime, "2d106det").apply(on_device, faces)
        faces = AutoLandmarker(runtime).apply(on_device, faces)
        faces = Recogniser(runtime, "arcface_w600k_r50_ff").embed(on_device, faces)
        results[provider] = faces
    gpu, cpu = results["cuda"], results["cpu"]
    assert all(f.landmarks is not None and not f.landmarks.is_cuda for f in gpu)
    assert all(f.embedding is not None and f.embedding.is_cuda for f in gpu)
    for g, c in zip(gpu, cpu, strict=True):
        assert g.landmark_model == c.landmark_model
        assert g.landmarks is not None and c.landmarks is not None
        assert (g.landmarks.cpu() - c.landmarks).abs().max() < 1.0
        assert g.embedding is not None and c.embedding is not None
        assert torch.nn.functional.cosine_similarity(g.embedding.cpu(), c.embedding, dim=0) > 0.999
    reference = Identity.from_embeddings(
        "first",
        "arcface_w600k_r50_ff",
        gpu[0].embedding[None],
        ["solvay"],
        Combine.MEAN,  # type: ignore[index]
    )
    chosen = select(gpu, SelectionSettings(SelectionMode.REFERENCE, 0.95), [reference])
    assert [c.face for c in chosen] == [gpu[0]]
