"""Export batching: faces from several frames go through a swapper that takes a batch in one call, and
the frames come out exactly as they do one at a time. The catalog's published swappers are fixed at
batch 1, so this uses a stand-in of inswapper_128_fp16 re-declared with a symbolic batch axis, in its
`identity` behaviour: every crop comes back unchanged, so a crop handed to the wrong frame would show."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from PIL import Image
from skimage import data

from app.core.settings import InferenceSettings
from app.inference.calls import CallLog
from app.inference.providers import Provider
from app.inference.runtime import InferenceRuntime
from app.media.video import open_video
from app.models.catalog import Catalog, TensorSpec, load_catalog
from app.models.store import ModelStore
from app.pipeline.job_state import EngineOptions, SwapJob
from app.pipeline.jobs import run_swap
from app.pipeline.settings import AnalysisSettings, PipelineSettings
from app.processing.settings import ProcessingSettings, SwapSettings
from app.tracking.face_tracker import TrackingSettings
from tests.support.media import make_clip
from tools.make_standins import make_standins
from tools.real_models import REAL_SCRFD_ID, real_scrfd_store

BATCHED = "inswapper_batched_standin"


def _batched_entry() -> object:
    base = load_catalog().get("inswapper_128_fp16")

    def symbolic(spec: TensorSpec) -> TensorSpec:
        return spec.model_copy(update={"shape": ("batch", *spec.shape[1:])})

    return base.model_copy(
        update={
            "id": BATCHED,
            "name": "STAND-IN inswapper_128_fp16 with a batch axis",
            "file": "inswapper_batched_standin.onnx",
            "inputs": tuple(symbolic(s) for s in base.inputs),
            "outputs": tuple(symbolic(s) for s in base.outputs),
            "default": False,
        }
    )


@pytest.fixture(scope="module")
def runtime(test_assets: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InferenceRuntime]:
    root = tmp_path_factory.mktemp("batching")
    models = root / "models"
    scrfd = real_scrfd_store(test_assets, models)
    catalog = load_catalog()
    entries = [scrfd.catalog.get(REAL_SCRFD_ID), catalog.get("arcface_w600k_r50"), _batched_entry()]
    make_standins(models, Catalog(entries), ["arcface_w600k_r50", BATCHED])  # type: ignore[list-item]
    store = ModelStore(models, Catalog(entries))  # type: ignore[list-item]
    store = ModelStore(models, store.catalog.merged(store.standin_entries()))  # ID@identity …
    runtime = InferenceRuntime(store, cache_root=root / "cache")
    yield runtime
    runtime.close()


def test_a_batched_export_makes_fewer_swapper_calls_and_the_same_frames(
    runtime: InferenceRuntime, tmp_path: Path
) -> None:
    assert runtime.store.catalog.get(BATCHED).inputs[0].shape[0] == "batch"
    face = tmp_path / "face.png"
    Image.fromarray(data.astronaut()).save(face)
    clip = make_clip(
        tmp_path / "clip.mp4", seconds=1.0, fps=20, size=(320, 320), image=data.astronaut(), audio=False
    )
    settings = PipelineSettings(
        analysis=AnalysisSettings(detector=REAL_SCRFD_ID),
        # identity: each crop comes back as it went in, so a row given to the wrong frame would show
        processing=ProcessingSettings(swap=SwapSettings(swapper=f"{BATCHED}@identity", pixel_boost=256)),
    )
    outputs, calls = {}, {}
    for batch in (1, 4):
        log = CallLog()
        runtime.call_log = log
        try:
            report = run_swap(
                runtime,
                SwapJob(
                    sources=(face,), target=clip, output=tmp_path / f"b{batch}.mp4", settings=settings,
                    engine=EngineOptions(workers=2, batch=batch, queue=16), audio=False,
                ),
            )  # fmt: skip
        finally:
            runtime.call_log = None
        assert report.batch == batch and report.frames == 20
        calls[batch] = sum(n for sig, n in log.snapshot().items() if sig.model_id == f"{BATCHED}@identity")
        with open_video(tmp_path / f"b{batch}.mp4") as video:
            outputs[batch] = [frame.image for frame in video.frames()]
    # pixel boost 256 on a 128 model: 4 tiles per face; batch 1 sends the 4 tiles in one call per frame,
    # batch 4 sends 16 tiles (4 frames) per call
    assert calls[1] == 20 and calls[4] == 5
    assert all(torch.equal(a, b) for a, b in zip(outputs[1], outputs[4], strict=True))


@pytest.fixture(scope="module")
def rewriting_runtime(
    runtime: InferenceRuntime, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[InferenceRuntime]:
    """The same models, on a stand-in CUDA (ORT's CPU provider): batch-axis rewrites are made there,
    so the real SCRFD export gets a batch axis as it would on a GPU."""
    backed = InferenceRuntime(
        runtime.store,
        InferenceSettings(precision="fp32"),
        cache_root=tmp_path_factory.mktemp("rewrites"),
        backends={Provider.CUDA: "CPUExecutionProvider"},
    )
    yield backed
    backed.close()


def test_without_tracking_frames_are_analysed_in_batched_detector_calls(
    rewriting_runtime: InferenceRuntime, tmp_path: Path
) -> None:
    runtime = rewriting_runtime
    assert runtime.takes_a_batch(REAL_SCRFD_ID)  # the surgery passed its gate on the real detector
    face = tmp_path / "face.png"
    Image.fromarray(data.astronaut()).save(face)
    clip = make_clip(
        tmp_path / "clip.mp4", seconds=0.6, fps=20, size=(320, 320), image=data.astronaut(), audio=False
    )
    settings = PipelineSettings(
        analysis=AnalysisSettings(detector=REAL_SCRFD_ID),
        tracking=TrackingSettings(enabled=False),
        processing=ProcessingSettings(swap=SwapSettings(swapper=f"{BATCHED}@identity")),
    )
    outputs, detector_calls, swapped = {}, {}, {}
    for batch in (1, 4):
        log = CallLog()
        runtime.call_log = log
        try:
            report = run_swap(
                runtime,
                SwapJob(
                    sources=(face,), target=clip, output=tmp_path / f"t{batch}.mp4", settings=settings,
                    engine=EngineOptions(workers=2, batch=batch, queue=16), audio=False,
                ),
            )  # fmt: skip
        finally:
            runtime.call_log = None
        assert report.frames == 12 and report.faces_swapped >= 10
        swapped[batch] = report.faces_swapped
        detector_calls[batch] = {
            sig.inputs[0][1][0]: n for sig, n in log.snapshot().items() if sig.model_id == REAL_SCRFD_ID
        }
        with open_video(tmp_path / f"t{batch}.mp4") as video:
            outputs[batch] = [frame.image.int() for frame in video.frames()]
    # 12 frames: one frame per call, or three calls of 4 frames (the source photo is one more single call)
    assert detector_calls[1] == {1: 13}
    assert detector_calls[4] == {1: 1, 4: 3}
    assert swapped[1] == swapped[4]
    for a, b in zip(outputs[1], outputs[4], strict=True):
        assert (a - b).abs().max() <= 2  # a batched convolution may round differently in the last bit


def _boobytrapped(*args: object, **kwargs: object) -> None:
    raise RuntimeError("rewritten in the previewing process")


def test_the_studios_first_preview_has_its_rewrites_written_by_builder_processes(
    runtime: InferenceRuntime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The studio loads models on its first preview, without a job's preload: the preview starts the
    rewrites of what it will run in builder processes. With this process's own batch-axis surgery made
    to fail (and every file large enough for a builder), the real SCRFD still gets its batch axis."""
    from app.inference import batch_axis, rewrites
    from app.pipeline.previewer import MediaPreviewer
    from app.pipeline.settings import SourceFace

    monkeypatch.setattr(batch_axis, "make_batch_dynamic", _boobytrapped)
    monkeypatch.setattr(rewrites, "PREBUILD_MIN_BYTES", 0)
    backed = InferenceRuntime(
        runtime.store,
        InferenceSettings(precision="fp32"),
        cache_root=tmp_path / "cache",
        backends={Provider.CUDA: "CPUExecutionProvider"},
    )
    photo = tmp_path / "face.png"
    Image.fromarray(data.astronaut()).save(photo)
    settings = PipelineSettings(
        analysis=AnalysisSettings(detector=REAL_SCRFD_ID),
        processing=ProcessingSettings(swap=SwapSettings(swapper=f"{BATCHED}@identity")),
    )
    previewer = MediaPreviewer(backed, photo)
    try:
        shown = previewer.preview(0, settings, SourceFace(), lambda: None)
        assert shown.found  # the detector ran, from its batched file
        assert backed.takes_a_batch(REAL_SCRFD_ID)
        prebuilt = backed.rewrites._prebuilding
        assert REAL_SCRFD_ID in prebuilt
        first = prebuilt[REAL_SCRFD_ID]
        backed.prebuild_rewrites([REAL_SCRFD_ID])  # asked again: the one builder stands
        assert backed.rewrites._prebuilding[REAL_SCRFD_ID] is first
    finally:
        previewer.close()
        backed.close()
