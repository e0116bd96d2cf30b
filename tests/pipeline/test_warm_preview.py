"""A fast start: the first swapped preview is a draft without the restorer, which a ModelWarmer loads
in the background; the next preview is complete. Real SCRFD, stand-in swapper and restorer."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from PIL import Image
from skimage import data

from app.inference.errors import InferenceError
from app.inference.faults import FaultPlan
from app.inference.runtime import InferenceRuntime
from app.pipeline.previewer import MediaPreviewer, PreviewFrame
from app.pipeline.settings import PipelineSettings, SourceFace, without_finishing
from app.pipeline.warmer import ModelWarmer
from app.processing.settings import RestoreSettings
from tests.pipeline.conftest import SWAP_STANDINS
from tests.support.processing import flat_swap_settings, standin_runtime

RESTORER = "gfpgan_1.4"  # the spec stand-in: its output is not its input, so it changes the pixels
BROKEN = "gfpgan_1.4@identity"  # fails to load on every provider (injected faults)
LOADABLE = ("gfpgan_1.4@identity", "inswapper_128_fp16@identity", "arcface_w600k_r50")


@pytest.fixture(scope="module")
def runtime(test_assets: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InferenceRuntime]:
    runtime = standin_runtime(test_assets, tmp_path_factory.mktemp("warm"), (*SWAP_STANDINS, RESTORER))
    yield runtime
    runtime.close()


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("warm-media") / "astronaut.png"
    Image.fromarray(data.astronaut()[::2, ::2].copy()).save(path)  # 256 x 256: small and quick
    return path


def restoring(restorer: str) -> PipelineSettings:
    settings = flat_swap_settings()
    processing = settings.processing.model_copy(update={"restore": RestoreSettings(restorer=restorer)})
    return settings.model_copy(update={"processing": processing})


class Heard:
    """The warmer's callback: the models of each call, and an event per call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.event = threading.Event()

    def __call__(self, models: tuple[str, ...]) -> None:
        self.calls.append(models)
        self.event.set()


def preview(previewer: MediaPreviewer, settings: PipelineSettings, photo: Path) -> PreviewFrame:
    return previewer.preview(0, settings, SourceFace(files=(photo,)), lambda: None)


def test_the_first_preview_is_a_draft_and_the_next_is_complete_once_the_restorer_loaded(
    runtime: InferenceRuntime, photo: Path
) -> None:
    runtime.pool.discard(RESTORER)
    heard = Heard()
    warmer = ModelWarmer(runtime, heard)
    previewer = MediaPreviewer(runtime, photo, warmer=warmer)
    plain = MediaPreviewer(runtime, photo)  # no warmer: every frame complete, as before
    settings = restoring(RESTORER)
    try:
        draft = preview(previewer, settings, photo)
        assert draft.swapped and draft.pending == (RESTORER,)
        assert torch.equal(draft.after, preview(plain, without_finishing(settings), photo).after)
        assert heard.event.wait(30), "the warmer never reported"
        assert heard.calls == [(RESTORER,)] and runtime.is_loaded(RESTORER)
        full = preview(previewer, settings, photo)
    finally:
        warmer.close()
        previewer.close()
        plain.close()
    assert full.swapped and full.pending == ()
    assert torch.equal(full.before, draft.before)
    changed = (full.after != draft.after).any(dim=2)
    assert changed.any() and changed.float().mean() < 0.5  # the restorer worked on the face alone
    assert heard.calls == [(RESTORER,)] and warmer.loads == 1  # the complete frame asked for nothing


def test_without_a_source_nothing_is_pending_and_nothing_is_warmed(
    runtime: InferenceRuntime, photo: Path
) -> None:
    runtime.pool.discard(RESTORER)
    warmer = ModelWarmer(runtime)
    previewer = MediaPreviewer(runtime, photo, warmer=warmer)
    try:
        frame = previewer.preview(0, restoring(RESTORER), SourceFace(), lambda: None)
    finally:
        warmer.close()
        previewer.close()
    assert not frame.swapped and frame.pending == () and warmer.loads == 0


def test_a_restorer_that_cannot_load_is_tried_once_then_reported_by_the_full_render(
    runtime: InferenceRuntime, photo: Path, tmp_path: Path
) -> None:
    faults = FaultPlan.parse(",".join(f"{p}:load:{BROKEN}" for p in ("tensorrt", "cuda", "cpu")))
    faulty = InferenceRuntime(runtime.store, cache_root=tmp_path / "cache", faults=faults)
    heard = Heard()
    warmer = ModelWarmer(faulty, heard)
    previewer = MediaPreviewer(faulty, photo, warmer=warmer)
    settings = restoring(BROKEN)
    try:
        assert preview(previewer, settings, photo).pending == (BROKEN,)
        assert heard.event.wait(30)
        assert "could not be loaded" in warmer.failed[BROKEN]
        for _ in range(2):  # no draft again: the error each time, as without a warmer
            with pytest.raises(InferenceError, match="could not be loaded"):
                preview(previewer, settings, photo)
    finally:
        warmer.close()
        previewer.close()
        faulty.close()
    assert heard.calls == [(BROKEN,)] and warmer.loads == 1


def test_the_newest_request_wins_and_close_joins_the_thread(runtime: InferenceRuntime) -> None:
    for model in LOADABLE:
        runtime.pool.discard(model)
    first, skipped, last = LOADABLE
    gate = threading.Event()
    calls: list[tuple[str, ...]] = []

    def on_ready(models: tuple[str, ...]) -> None:
        calls.append(models)
        gate.wait(10)  # hold the thread, so that the next two requests meet in the slot

    warmer = ModelWarmer(runtime, on_ready)
    try:
        warmer.request([first])
        deadline = time.monotonic() + 30
        while not calls and time.monotonic() < deadline:
            time.sleep(0.01)
        warmer.request([skipped])
        warmer.request([last])  # replaces the request not started yet
        gate.set()
        while len(calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        warmer.close()
    assert calls == [(first,), (last,)]
    assert runtime.is_loaded(last) and not runtime.is_loaded(skipped)
    assert not warmer.alive
    assert not [t for t in threading.enumerate() if t.name == "warmer" and t.is_alive()]


def test_close_returns_at_once_when_idle_and_after_the_load_under_way(runtime: InferenceRuntime) -> None:
    idle = ModelWarmer(runtime)
    started = time.perf_counter()
    idle.close()
    assert time.perf_counter() - started < 1.0 and not idle.alive
    runtime.pool.discard(RESTORER)
    busy = ModelWarmer(runtime)
    busy.request([RESTORER])
    busy.close()  # joins: the load under way finishes or never starts, nothing is left running
    assert not busy.alive
    assert not [t for t in threading.enumerate() if t.name == "warmer" and t.is_alive()]
