"""The work folder of a resumable export (app.media.segments): its manifest, the checks that decide what
a resume may keep, and the clean-up.

The manifest is the only source of truth: a segment counts as done only once it is listed, and it is
listed only after its file (and its state file) are on disk, so a crash at any moment leaves a
manifest whose entries are whole. Files the manifest does not list (a segment renamed just before a
kill, a partial one, a half-joined output) are deleted when work resumes. A listed file whose size or
SHA-256 no longer matches (a disk error, a copy cut short) ends the list there: that segment and the
ones after it are encoded again. Work from other inputs or settings (another fingerprint) is
discarded. Only names this module makes are ever deleted, so a folder that happens to share the name
is refused rather than emptied.
"""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.media.durable import write_durably
from app.media.errors import MediaWriteError

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "doppel.export-segments"
MANIFEST_VERSION = 1  # raise it when segment encoding changes: older work is then started over
SEGMENT_SUFFIX = ".mp4"  # MP4 keeps pts and dts exactly at any time base (Matroska: ms, no dts)
MAX_THREADS = 16
# Every name made in a work folder (by this module, VideoWriter's partials, the join); others are not ours.
_OWN_NAME = re.compile(
    r"\.?manifest\.json(\.tmp)?|\.?segment-\d+\.(mp4|state)(\.tmp)?|\.segment-\d+\.\w+\.partial\.mp4"
    r"|joined\.partial\.\w+"
)

Settings = dict[str, str | int]


class SegmentRecord(BaseModel):
    """A completed segment: its frames, first and last pts (in the writer's time base), and the size
    and hash its file (and its state file) must have to be trusted on resume."""

    model_config = ConfigDict(frozen=True)

    file: str
    frames: int = Field(gt=0)
    first_pts: int
    last_pts: int
    size: int
    sha256: str
    state_file: str | None = None
    state_size: int = 0
    state_sha256: str | None = None


class Manifest(BaseModel):
    format: str = MANIFEST_FORMAT
    version: int = MANIFEST_VERSION
    fingerprint: str
    settings: Settings
    encoder: str
    threads: int = Field(gt=0)  # chosen at the start and kept, so a resume encodes alike anywhere
    segments: list[SegmentRecord] = []


def work_folder(output: Path) -> Path:
    """Where the segments of an export to `output` are kept until it finishes (beside it, so the final
    rename stays on one filesystem)."""
    return output.with_name(output.name + ".parts")


def segment_name(index: int) -> str:
    return f"segment-{index:05d}{SEGMENT_SUFFIX}"


class WorkFolder:
    """The work folder of an export to `output`; `open()` resumes or starts over, `add()` records a
    segment once it is on disk, `remove()` clears it after the output is in place."""

    def __init__(self, output: Path, segment_frames: int) -> None:
        self.output, self.segment_frames = output, segment_frames
        self.path = work_folder(output)
        self.manifest: Manifest | None = None

    @property
    def segments(self) -> list[SegmentRecord]:
        return self.manifest.segments if self.manifest else []

    def open(self, fingerprint: str, settings: Settings, encoder: str, threads: int) -> Manifest:
        """The manifest of the work to continue: earlier work when it matches (cut at its first bad
        segment), else a new, empty one. `encoder` is the one that would run now; `threads`, each
        segment's encoder threads, is kept only by new work (earlier work keeps its own)."""
        self.manifest = self._resume(fingerprint, settings, encoder) or self._start_over(
            fingerprint, settings, encoder, threads
        )
        return self.manifest

    def _resume(self, fingerprint: str, settings: Settings, encoder: str) -> Manifest | None:
        manifest_path = self.path / MANIFEST
        if not manifest_path.is_file():
            return None
        try:
            manifest = Manifest.model_validate_json(manifest_path.read_bytes())
        except (OSError, ValidationError) as exc:
            log.warning(
                "Starting %s over: the manifest in %s is unreadable (%s)", self.output, self.path, exc
            )
            return None
        why = _mismatch(manifest, fingerprint, settings, encoder)
        if why:
            log.info("Starting %s over: the work in %s %s", self.output, self.path, why)
            return None
        kept = self._trusted(manifest.segments)
        if len(kept) < len(manifest.segments):
            manifest.segments = kept
            self.save(manifest)
        self._clear(keep={MANIFEST} | {name for record in kept for name in _files(record)})
        return manifest

    def _trusted(self, records: list[SegmentRecord]) -> list[SegmentRecord]:
        """The leading records whose files are whole (size and hash) and in sequence."""
        kept: list[SegmentRecord] = []
        for index, record in enumerate(records):
            problem = self._problem(index, record, kept[-1] if kept else None)
            if problem:
                log.warning("%s: redoing from segment %d: %s", self.output, index, problem)
                break
            kept.append(record)
        return kept

    def _problem(self, index: int, record: SegmentRecord, previous: SegmentRecord | None) -> str:
        if record.file != segment_name(index) or record.frames > self.segment_frames:
            return f"manifest entry {record.file} is out of sequence"
        if previous is not None and (
            previous.frames < self.segment_frames or record.first_pts <= previous.last_pts
        ):
            return f"{record.file} does not follow {previous.file}"
        if digest(self.path / record.file) != (record.size, record.sha256):
            return f"{record.file} is missing or damaged"
        if record.state_file and digest(self.path / record.state_file) != (
            record.state_size,
            record.state_sha256,
        ):
            return f"{record.state_file} is missing or damaged"
        return ""

    def _start_over(self, fingerprint: str, settings: Settings, encoder: str, threads: int) -> Manifest:
        self._clear(keep=set())
        try:
            self.path.mkdir(exist_ok=True)
        except OSError as exc:
            raise MediaWriteError(f"Cannot write {self.output}: cannot create {self.path}: {exc}") from exc
        threads = max(1, min(MAX_THREADS, threads))
        manifest = Manifest(fingerprint=fingerprint, settings=settings, encoder=encoder, threads=threads)
        self.save(manifest)
        return manifest

    # ---- recording ---------------------------------------------------------------------------------

    def add(self, segment: Path, frames: int, first_pts: int, last_pts: int, state: bytes | None) -> None:
        """List a finished segment (already flushed and renamed into place), with the caller's state
        written beside it first: the manifest is saved only once both are on disk."""
        size, sha256 = digest(segment)
        record = SegmentRecord(
            file=segment.name,
            frames=frames,
            first_pts=first_pts,
            last_pts=last_pts,
            size=size,
            sha256=sha256 or "",
        )
        if state is not None:
            state_path = segment.with_suffix(".state")
            try:
                write_durably(state_path, state)
            except OSError as exc:
                raise MediaWriteError(f"Cannot write {self.output}: cannot save {state_path}: {exc}") from exc
            record = record.model_copy(
                update={
                    "state_file": state_path.name,
                    "state_size": len(state),
                    "state_sha256": hashlib.sha256(state).hexdigest(),
                }
            )
        manifest = self._manifest()
        manifest.segments.append(record)
        self.save(manifest)
        log.debug("%s: %s done (%d frames)", self.output, record.file, frames)

    def save(self, manifest: Manifest | None = None) -> None:
        manifest = manifest or self._manifest()
        try:
            write_durably(self.path / MANIFEST, manifest.model_dump_json(indent=1).encode())
        except OSError as exc:
            raise MediaWriteError(
                f"Cannot write {self.output}: cannot save {self.path / MANIFEST}: {exc}"
            ) from exc

    def last_state(self) -> bytes | None:
        """The state saved with the last listed segment (checked against its hash when resuming)."""
        record = self.segments[-1] if self.segments else None
        if record is None or not record.state_file:
            return None
        return (self.path / record.state_file).read_bytes()

    def _manifest(self) -> Manifest:
        if self.manifest is None:
            raise MediaWriteError(f"Cannot write {self.output}: its work folder {self.path} is not open")
        return self.manifest

    # ---- clearing ----------------------------------------------------------------------------------

    def _clear(self, keep: set[str]) -> None:
        foreign = _remove_own_files(self.path, keep)
        if foreign:
            raise MediaWriteError(
                f"Cannot write {self.output}: its work folder {self.path} holds files Doppel did not "
                f"write ({', '.join(foreign[:5])}); move them away"
            )

    def remove(self) -> None:
        """Remove the folder once nothing in it is needed; what is not ours stays (and is logged)."""
        try:
            foreign = _remove_own_files(self.path, keep=set())
            if foreign:
                log.warning("Left %s in place: it holds %s", self.path, ", ".join(foreign[:5]))
            elif self.path.is_dir():
                self.path.rmdir()
        except OSError as exc:  # the output is in place; a leftover folder is only started over
            log.warning("Could not remove %s: %s", self.path, exc)


def _mismatch(manifest: Manifest, fingerprint: str, settings: Settings, encoder: str) -> str:
    """Why earlier work cannot be continued ("" when it can)."""
    if manifest.format != MANIFEST_FORMAT or manifest.version != MANIFEST_VERSION:
        return f"is from another version ({manifest.format} {manifest.version})"
    if manifest.fingerprint != fingerprint:
        return "is from other inputs or settings (its fingerprint differs)"
    if manifest.settings != settings:
        return f"was encoded with other settings ({manifest.settings}; now {settings})"
    if manifest.encoder != encoder and manifest.encoder.endswith("_nvenc"):
        return f"was encoded with {manifest.encoder}, which does not run now"
    return ""


def _remove_own_files(folder: Path, keep: set[str]) -> list[str]:
    """Delete the files named as this module names them in `folder`, but for `keep`; the other names.

    Last segments first and the manifest after them: a kill part-way leaves a manifest whose leading
    segments are still there, so a resume redoes only what is gone."""
    if not folder.is_dir():
        return []
    foreign = []
    for entry in sorted(folder.iterdir(), reverse=True):
        if entry.name in keep:
            continue
        if _OWN_NAME.fullmatch(entry.name) and entry.is_file():
            entry.unlink()
        else:
            foreign.append(entry.name)
    return sorted(foreign)


def _files(record: SegmentRecord) -> list[str]:
    return [record.file] + ([record.state_file] if record.state_file else [])


def digest(path: Path) -> tuple[int, str | None]:
    """(size, SHA-256) of `path`; (-1, None) when it cannot be read."""
    sha256 = hashlib.sha256()
    size = 0
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                sha256.update(chunk)
                size += len(chunk)
    except OSError:
        return -1, None
    return size, sha256.hexdigest()
