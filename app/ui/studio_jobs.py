"""What the studio's state turns into for the engine: an export job, live mode's models, a reference
face and its source, an identity to save. Plain functions (no widgets), called on the GUI thread;
anything slow they return is run by the caller on a worker thread."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from app.core.errors import DoppelError
from app.core.profiling import StageTimer
from app.faces.detector import FaceDetector
from app.faces.identity import Combine, Identity
from app.faces.recogniser import Recogniser
from app.faces.selection import SelectionMode, SelectionSettings
from app.faces.types import Face
from app.inference.runtime import InferenceRuntime
from app.pipeline.frame_swap import frame_device
from app.pipeline.job_state import EngineOptions, JobState, SwapJob
from app.pipeline.live import live_job
from app.pipeline.settings import PipelineSettings, Reference, SourceFace
from app.pipeline.sources import load_sources
from app.processing.swapper import Swapper
from app.ui.controller import StudioController
from app.ui.export_panel import ExportChoice


def has_a_source(source: SourceFace, settings: PipelineSettings) -> bool:
    """Someone is chosen to paste: the person picked in the Faces panel, or a reference's own."""
    return bool(source) or any(reference.source for reference in settings.analysis.references)


_NO_SOURCE = "Add a photo of the source face first (the Faces panel), or load an identity"


def export_job(controller: StudioController, choice: ExportChoice, workers: int) -> SwapJob:
    """An export of what the studio shows: its media, source faces, settings and markers."""
    if controller.media is None:
        raise DoppelError("Open a video or an image to export first")
    if not has_a_source(controller.source, controller.settings):
        raise DoppelError(_NO_SOURCE)
    return SwapJob(
        sources=controller.source.files,
        target=controller.media.path,
        output=choice.output,
        settings=controller.settings,
        markers=controller.schedule() if controller.media.is_video else (),
        combine=controller.source.combine,
        codec="hevc" if choice.codec == "hevc" else "h264",
        crf=choice.crf,
        x264_preset=choice.x264_preset,
        engine=EngineOptions(workers=workers),
    )


def live_loader(controller: StudioController, runtime: InferenceRuntime) -> Callable[[], JobState]:
    """A snapshot of the studio's faces and settings, and the function that loads live mode's models
    from it (to run on a worker thread)."""
    source, settings = controller.source, controller.settings
    if not has_a_source(source, settings):
        raise DoppelError(_NO_SOURCE)
    job = live_job(source, settings)
    return lambda: JobState(runtime, job, StageTimer())


def target_embedder(
    runtime: InferenceRuntime,
    settings: PipelineSettings,
    frame: torch.Tensor,
    face: Face,
    name: str,
    label: str,
    recogniser: str | None = None,
) -> Callable[[], Identity]:
    """The function (for a worker thread) that embeds `face` of `frame` as a reference identity, with
    `recogniser` (the other references') or else the swapper's."""

    def embed() -> Identity:
        recogniser_id = recogniser or Swapper(runtime, settings.processing.swap).recogniser_id
        rows = Recogniser(runtime, recogniser_id).embeddings(frame, [face])
        return Identity.from_embeddings(name, recogniser_id, rows, [label], Combine.MEAN)

    return embed


def identity_maker(
    runtime: InferenceRuntime, settings: PipelineSettings, source: SourceFace, name: str
) -> Callable[[], Identity]:
    """The function (for a worker thread) that turns a person's photos and identity files into one
    identity, embedded the way the current settings' swapper reads it, to save as a file."""

    def make() -> Identity:
        analysis = settings.analysis
        detector_id = analysis.detector_id(runtime.store.catalog, "detector")
        detector = FaceDetector(runtime, detector_id, analysis.detection)
        recogniser = Recogniser(runtime, Swapper(runtime, settings.processing.swap).recogniser_id)
        device = frame_device(runtime)
        return load_sources(source.files, detector, recogniser, device, source.combine).to_identity(name)

    return make


def with_assignment(
    settings: PipelineSettings, target: Identity | None, reference: int | None, source: SourceFace
) -> PipelineSettings:
    """Reference mode, with `source` pasted on faces like the clicked one: the reference that face
    already matched (`reference`) gets the new source, else `target` becomes a new reference. The
    user's similarity threshold is kept."""
    references = list(settings.analysis.references)
    if reference is not None and reference < len(references):
        references[reference] = references[reference].model_copy(update={"source": source})
    elif target is not None:
        references.append(Reference(target=target, source=source))
    else:
        return settings  # nothing to assign
    selection = SelectionSettings(SelectionMode.REFERENCE, settings.analysis.selection.similarity)
    analysis = settings.analysis.model_copy(update={"selection": selection, "references": tuple(references)})
    return settings.model_copy(update={"analysis": analysis})


def without_missing_sources(settings: PipelineSettings) -> tuple[PipelineSettings, list[Path]]:
    """The settings with source files that are gone dropped from each reference (a reference left with
    none gets the selected person), and the files dropped: restored settings must not point at them."""
    gone: list[Path] = []
    references = []
    for reference in settings.analysis.references:
        kept = tuple(f for f in reference.source.files if f.is_file())
        gone += [f for f in reference.source.files if f not in kept]
        source = reference.source.model_copy(update={"files": kept})
        references.append(reference.model_copy(update={"source": source}))
    analysis = settings.analysis.model_copy(update={"references": tuple(references)})
    return settings.model_copy(update={"analysis": analysis}), gone


def without_assignments(settings: PipelineSettings) -> PipelineSettings:
    """Every face swapped again (many mode), no references."""
    selection = SelectionSettings(SelectionMode.MANY, settings.analysis.selection.similarity)
    analysis = settings.analysis.model_copy(update={"selection": selection, "references": ()})
    return settings.model_copy(update={"analysis": analysis})
