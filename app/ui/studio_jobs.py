"""What the studio's state turns into for the engine: an export job, live mode's models, a reference
face. Plain functions (no widgets), called on the GUI thread; anything slow they return is run by the
caller on a worker thread."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from app.core.errors import DoppelError
from app.core.profiling import StageTimer
from app.faces.identity import Combine, Identity
from app.faces.recogniser import Recogniser
from app.faces.selection import SelectionMode, SelectionSettings
from app.faces.types import Face
from app.inference.runtime import InferenceRuntime
from app.pipeline.job_state import EngineOptions, JobState, SwapJob
from app.pipeline.live import live_job
from app.pipeline.settings import PipelineSettings
from app.processing.swapper import Swapper
from app.ui.controller import StudioController


def export_job(controller: StudioController, output: Path, codec: str, crf: int, workers: int) -> SwapJob:
    """An export of what the studio shows: its media, source faces and settings."""
    if controller.media is None:
        raise DoppelError("Open a video or an image to export first")
    if not controller.sources:
        raise DoppelError("Add a photo of the source face first (the Faces panel)")
    return SwapJob(
        sources=controller.sources,
        target=controller.media.path,
        output=output,
        settings=controller.settings,
        codec="hevc" if codec == "hevc" else "h264",
        crf=crf,
        engine=EngineOptions(workers=workers),
    )


def live_loader(controller: StudioController, runtime: InferenceRuntime) -> Callable[[], JobState]:
    """A snapshot of the studio's faces and settings, and the function that loads live mode's models
    from it (to run on a worker thread)."""
    sources, settings = controller.sources, controller.settings
    if not sources:
        raise DoppelError("Add a photo of the source face first (the Faces panel)")
    job = live_job(sources, settings)
    return lambda: JobState(runtime, job, StageTimer())


def reference_embedder(
    runtime: InferenceRuntime,
    settings: PipelineSettings,
    frame: torch.Tensor,
    face: Face,
    name: str,
    label: str,
) -> Callable[[], Identity]:
    """The function (for a worker thread) that embeds `face` of `frame` with the swapper's recogniser."""

    def embed() -> Identity:
        recogniser_id = Swapper(runtime, settings.processing.swap).recogniser_id
        rows = Recogniser(runtime, recogniser_id).embeddings(frame, [face])
        return Identity.from_embeddings(name, recogniser_id, rows, [label], Combine.MEAN)

    return embed


def with_reference(settings: PipelineSettings, identity: Identity) -> PipelineSettings:
    """Reference mode with `identity` as the one reference; the user's similarity threshold is kept."""
    selection = SelectionSettings(SelectionMode.REFERENCE, settings.analysis.selection.similarity)
    analysis = settings.analysis.model_copy(update={"selection": selection, "references": (identity,)})
    return settings.model_copy(update={"analysis": analysis})
