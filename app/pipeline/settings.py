"""PipelineSettings: everything one run of the pipeline depends on, as one immutable, versioned snapshot.

The GUI builds a new snapshot whenever a control moves and hands it to the workers with each request;
presets are named snapshots; user presets are snapshots saved as JSON. `analysis_key()` hashes the part
that decides which faces are found where (detector, tracking, stabilisation, landmarks, selection), so a
per-frame cache can tell when its entries went stale.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from app.core.errors import SettingsError
from app.faces.detector import DetectionSettings
from app.faces.identity import Combine, Identity
from app.faces.selection import SelectionSettings
from app.models.catalog import Catalog, Kind
from app.processing.settings import ProcessingSettings
from app.tracking.face_tracker import TrackingSettings

SETTINGS_VERSION = 1


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SourceFace(_Frozen):
    """One person to paste: photos (each gives its most prominent face) and saved identity files
    (IDENTITY_SUFFIX), their embeddings combined into one."""

    files: tuple[Path, ...] = ()
    combine: Combine | None = None  # None: a lone identity file's own choice, else the mean

    def __bool__(self) -> bool:
        return bool(self.files)


class Reference(_Frozen):
    """Reference mode: faces like `target` get `source` (when empty, the job's own source faces)."""

    target: Identity
    source: SourceFace = Field(default_factory=SourceFace)


class AnalysisSettings(_Frozen):
    detector: str | None = None  # None: the catalog's default detector
    detection: DetectionSettings = Field(default_factory=DetectionSettings)
    landmarker: str | None = None  # None: the detector's five points; "auto": routed by face size
    selection: SelectionSettings = Field(default_factory=SelectionSettings)
    # Reference mode: swap only faces like these targets (chosen by clicking a face in the studio, or
    # loaded identity files), each with its own source when it has one; they travel with the settings,
    # so previews, exports and the queue agree.
    references: tuple[Reference, ...] = ()

    @field_validator("references", mode="before")
    @classmethod
    def _bare_identities(cls, value: object) -> object:
        """Settings (and queued jobs) saved before references had sources hold bare identities."""
        if not isinstance(value, list | tuple):
            return value
        return [
            {"target": item}
            if isinstance(item, Identity) or (isinstance(item, dict) and "format" in item)
            else item
            for item in value
        ]

    def detector_id(self, catalog: Catalog, flag: str = "--detector") -> str:
        """The detector these settings run: the chosen one, else the catalog's default."""
        return self.detector or catalog.default_for(Kind.DETECTOR, flag)

    def targets(self) -> list[Identity]:
        return [reference.target for reference in self.references]


_SOURCES = {"references": {"__all__": {"source"}}}


class PipelineSettings(_Frozen):
    version: Literal[1] = 1  # SETTINGS_VERSION
    analysis: AnalysisSettings = Field(default_factory=AnalysisSettings)
    tracking: TrackingSettings = Field(default_factory=TrackingSettings)  # stabilisation too
    processing: ProcessingSettings = Field(default_factory=ProcessingSettings)

    def analysis_key(self) -> str:
        """A short hash of what decides the faces of a frame; equal keys mean cached faces still hold."""
        part = {
            # which source goes where is not analysis: a new source keeps the cached faces
            "analysis": self.analysis.model_dump(mode="json", exclude=_SOURCES),
            "tracking": self.tracking.model_dump(mode="json"),
            # strength < 1 embeds the target; its recogniser follows the swapper
            "swapper": self.processing.swap.swapper,
        }
        return hashlib.sha256(json.dumps(part, sort_keys=True).encode()).hexdigest()[:16]

    def fingerprint(self) -> str:
        """A hash of every setting, for telling an export's checkpoints apart."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()


def models_needed(settings: PipelineSettings, catalog: Catalog) -> list[str]:
    """The catalog models these settings run (their requirements come along when downloading): the
    detector and swapper (the catalog's defaults when unset), a named landmarker, the restorer and the
    mask models. "auto" landmarks pick from what is installed, so they add nothing here."""
    analysis, processing = settings.analysis, settings.processing
    wanted: list[str | None] = [
        analysis.detector_id(catalog, "detector"),
        processing.swap.swapper or catalog.default_for(Kind.SWAPPER, "swapper"),
    ]
    if analysis.landmarker != "auto":
        wanted.append(analysis.landmarker)
    wanted += [
        processing.restore.restorer,
        processing.mask.occluder,
        processing.mask.xseg,
        processing.mask.parser,
    ]
    return [model for model in dict.fromkeys(wanted) if model and model in catalog]


def finishing_models(settings: PipelineSettings, catalog: Catalog) -> tuple[str, ...]:
    """The models that only finish a swap: the restorer (when its blend lets it change anything). A
    preview can show a draft without them while they load; a frame enhancer would join them here."""
    restore = settings.processing.restore
    wanted = (restore.restorer,) if restore.blend > 0 else ()
    return tuple(model for model in wanted if model and model in catalog)


def without_finishing(settings: PipelineSettings) -> PipelineSettings:
    """The settings of a draft: the same swap, the restorer off."""
    restore = settings.processing.restore.model_copy(update={"restorer": None})
    processing = settings.processing.model_copy(update={"restore": restore})
    return settings.model_copy(update={"processing": processing})


def read_settings_file(path: Path) -> PipelineSettings:
    """A PipelineSettings JSON file; SettingsError names the file and what is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"Cannot read settings file {path}: {exc.strerror or exc}") from exc
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SettingsError(f"{path} is not valid JSON (line {exc.lineno}: {exc.msg})") from exc
    if isinstance(raw, dict) and raw.get("version", SETTINGS_VERSION) != SETTINGS_VERSION:
        raise SettingsError(
            f"{path} has settings version {raw.get('version')}; this Doppel reads version {SETTINGS_VERSION}"
        )
    try:
        return PipelineSettings.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        raise SettingsError(f"{path} holds invalid settings: {problems}") from exc


def write_settings_file(path: Path, settings: PipelineSettings) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(settings.model_dump_json(indent=2), encoding="utf-8")
    temporary.replace(path)
