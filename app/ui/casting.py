"""Casting: who is pasted on which face, between the Faces panel and the controller.

The selected person is the controller's source. Clicking a face of the frame makes it a reference
with the selected person as its own source (the face is embedded on a worker thread first; a face that
already matched a reference just gets the new person). Assignments hold for the whole video, so they
go into the settings before the first marker and into every marker's. Saving a person embeds their
photos on a worker thread and writes the identity file there too.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.core.errors import DoppelError
from app.faces.identity import Identity
from app.faces.types import Face
from app.inference.runtime import InferenceRuntime
from app.pipeline.settings import PipelineSettings, SourceFace
from app.ui.controller import StudioController
from app.ui.faces_panel import FacesPanel
from app.ui.studio_jobs import identity_maker, target_embedder, with_assignment, without_assignments
from app.ui.tasks import BackgroundTask


class Casting(QObject):
    message = Signal(str, str)  # text, level
    settings_changed = Signal(object)  # the PipelineSettings now in force at the frame shown

    def __init__(
        self,
        controller: StudioController,
        faces: FacesPanel,
        runtime: Callable[[], InferenceRuntime],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.controller, self.faces, self.runtime = controller, faces, runtime
        self._tasks: list[BackgroundTask] = []  # running helpers, kept alive until they finish
        faces.source_changed.connect(controller.set_source)
        faces.target_clicked.connect(self.assign)
        faces.save_requested.connect(self.save)
        faces.clear_requested.connect(self.clear)
        faces.message.connect(self.message)
        faces.person_changed.connect(self.follow)

    def labels(self, found: list[Face], chosen: list[Face], settings: PipelineSettings) -> list[str]:
        """For each face found, in words: its number, and who it gets when that is not simply the
        selected person, or that it is left alone."""
        references = settings.analysis.references
        by_box = {face.box: face for face in chosen}
        labels = []
        for number, face in enumerate(found, start=1):
            picked = by_box.get(face.box)
            if picked is None:
                labels.append(f"face {number} (left alone)")
                continue
            index = picked.reference  # may be past the end for a frame rendered before a change
            source = references[index].source if index is not None and index < len(references) else None
            if not source:  # the selected person
                labels.append(f"face {number}")
                continue
            whom = self.faces.name_of(source) or source.files[0].stem
            labels.append(f"face {number} → {whom}")
        return labels

    def assign(self, number: int) -> None:
        """Paste the selected person on face `number` of the frame shown, and on faces like it."""
        shown, person = self.controller.last, self.faces.selected
        if shown is None or not 0 <= number < len(shown.found):
            return
        if person is None:
            self.message.emit("Add or choose a source person first (the Faces panel)", "error")
            return
        face = shown.found[number]
        settings = self.controller.settings
        references = settings.analysis.references
        matched = next((f.reference for f in shown.faces if f.box == face.box), None)
        if matched is not None and matched < len(references):  # a reference's face: now the selected person
            self._apply(None, matched, person.face, number, person.name)
            return
        media = self.controller.media
        embed = target_embedder(
            self.runtime(),
            settings,
            shown.before,
            face,
            f"face {number + 1}",
            media.path.name if media is not None else "frame",
            # every reference must be embedded alike: by the recogniser the first one was
            recogniser=references[0].target.recogniser if references else None,
        )

        def embedded(target: Identity) -> None:
            if self.controller.settings.analysis.references != references:
                self.message.emit(
                    f"Face {number + 1} was not assigned: the assignments changed meanwhile", "warning"
                )
                return
            self._apply(target, None, person.face, number, person.name)

        self._run(embed, embedded, "That face could not be used")

    def follow(self, old: SourceFace, new: SourceFace) -> None:
        """A person's photos or combine method changed: the faces assigned to them follow."""

        def swap_source(settings: PipelineSettings) -> PipelineSettings:
            references = tuple(
                r.model_copy(update={"source": new}) if r.source == old else r
                for r in settings.analysis.references
            )
            analysis = settings.analysis.model_copy(update={"references": references})
            return settings.model_copy(update={"analysis": analysis})

        if any(r.source == old for r in self.controller.settings.analysis.references):
            self.controller.update_everywhere(swap_source)

    def clear(self) -> None:
        self.controller.update_everywhere(without_assignments)
        self.settings_changed.emit(self.controller.settings_for(self.controller.index))
        self.message.emit("Every face gets the selected person again", "info")

    def save(self, source: SourceFace, name: str, path: Path) -> None:
        make = identity_maker(
            self.runtime(), self.controller.settings_for(self.controller.index), source, name
        )

        def make_and_write() -> Path:
            identity = make()
            try:
                identity.save(path)
            except OSError as exc:
                raise DoppelError(f"Cannot write {path}: {exc.strerror or exc}") from exc
            return path

        self._run(
            make_and_write,
            lambda written: self.message.emit(f"Saved identity '{name}' to {written}", "info"),
            f"Identity '{name}' could not be saved",
        )

    def wait(self) -> None:
        for task in list(self._tasks):
            task.wait()

    def _apply(
        self, target: Identity | None, reference: int | None, source: SourceFace, number: int, name: str
    ) -> None:
        self.controller.update_everywhere(lambda s: with_assignment(s, target, reference, source))
        self.settings_changed.emit(self.controller.settings_for(self.controller.index))
        self.message.emit(f"Face {number + 1} and faces like it get {name} (reference mode)", "info")

    def _run(self, work: Callable[[], object], done: Callable[..., None], failure: str) -> None:
        task = BackgroundTask(work, self)
        task.done.connect(done)
        task.failed.connect(lambda words: self.message.emit(f"{failure}: {words}", "error"))
        self._tasks.append(task)
        task.finished.connect(lambda: self._tasks.remove(task))
        task.start()
