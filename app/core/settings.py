"""Typed, versioned user settings, stored as JSON in the config folder.

Only what the engine and the command line need lives here for now; the GUI adds its own sections.
A file from a newer Doppel (higher version) is refused rather than silently rewritten.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.core.errors import SettingsError
from app.core.paths import config_dir

SETTINGS_VERSION = 1
SETTINGS_FILE = "settings.json"


class DownloadSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    parallel: int = Field(default=3, ge=1, le=16)
    retries: int = Field(default=4, ge=0, le=20)
    timeout_s: float = Field(default=30.0, gt=0)


ProviderHint = Literal["auto", "tensorrt", "cuda", "cpu"]
PrecisionHint = Literal["fp32", "fp16"]


class TensorRTSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    builder_optimization_level: int = Field(default=3, ge=0, le=5)
    max_workspace_mb: int = Field(default=4096, ge=256)
    # Optimisation profiles for dynamic axes: batch axes run 1..max_batch (built for 1); dynamic image
    # sides run min_side..max_side (built for the model's own input size).
    max_batch: int = Field(default=8, ge=1, le=64)
    min_side: int = Field(default=64, ge=16)
    max_side: int = Field(default=1024, ge=64)


class InferenceSettings(BaseModel):
    """How models run. `provider` is the user's Execution choice: "auto" lets each catalog entry's own
    hint decide; anything else applies to every model unless `model_providers` names the model."""

    model_config = ConfigDict(extra="forbid")
    provider: ProviderHint = "auto"
    model_providers: dict[str, ProviderHint] = Field(default_factory=dict)
    # fp16 unless told otherwise: TensorRT builds fp16 engines; on the CUDA provider an fp32 file runs
    # as its fp16 rewrite where that passes the parity gate (GPUs from Volta on); the CPU runs fp32.
    precision: PrecisionHint = "fp16"
    model_precisions: dict[str, PrecisionHint] = Field(default_factory=dict)
    # Heuristic: measured per model on the H200 (tools/model_timings.py, FLOP-matched stand-ins), the
    # exhaustive search costs 140-480 ms per input shape on every launch (ORT keeps no cache of it) and
    # each model meets five shapes (warm-up, batch buckets 1/2/4/8): about 10 s of a warm start. It
    # bought 0.1-0.7 ms per call on three of five models, lost on one (inswapper), tied on one, while
    # the export left the GPU three quarters idle. "exhaustive" stays a choice for long GPU-bound jobs.
    cudnn_conv_algo_search: Literal["exhaustive", "heuristic", "default"] = "heuristic"
    # cuDNN may take all the workspace an algorithm asks for (ORT's cudnn_conv_use_max_workspace): the
    # fastest convolutions, at up to gigabytes of scratch per model. Off caps it (less VRAM, maybe
    # slower); issue 15's 4 GB target is to be measured against it.
    cudnn_max_workspace: bool = True
    # TF32 tensor cores on Ampere and later: much faster convolutions, ~1e-3 relative error. Off for
    # bit-careful comparisons against the CPU.
    allow_tf32: bool = True
    cuda_graphs: Literal["auto", "off"] = "auto"  # auto: models that passed the probe on this GPU
    # Each model on the CUDA provider computes on a stream of its own, ordered against the caller's on
    # the GPU, so no model call makes the host wait (app.inference.streams). Off: ORT's own stream,
    # synchronised at every call (slower; for diagnosing a driver or ORT build).
    stream_handoff: bool = True
    # auto: batch-1 model files get a dynamic batch axis where the rewrite passes its gate (GPU only).
    batch_axis: Literal["auto", "off"] = "auto"
    # The largest batch a model's CUDA graphs are captured for (buckets 1, 2, 4, 8 up to it). Each
    # bucket's graph keeps its own activations in VRAM; a larger batch replays in pieces of this size.
    max_graph_batch: Literal[1, 2, 4, 8] = 8
    # One run right after each load, so lazy setup (cuDNN search, arenas, engines) never hits a frame.
    warmup_on_load: bool = True
    device_index: int = Field(default=0, ge=0)
    max_sessions: int = Field(default=8, ge=1, le=64)
    vram_budget_mb: int | None = Field(default=None, ge=64)  # None: 80% of the GPU's memory
    host_budget_mb: int | None = Field(default=None, ge=64)  # None: no limit on CPU sessions
    tensorrt: TensorRTSettings = Field(default_factory=TensorRTSettings)


class TelemetrySettings(BaseModel):
    """Opt-in local telemetry (app/core/telemetry.py): latency, fallback, tracker-loss and job events
    appended to a JSON-lines file in the user's data folder. Off unless the user turns it on; nothing
    is ever sent anywhere."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = False
    max_file_mb: float = Field(default=5.0, gt=0, le=1024)  # then rotated, keeping one older file


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = SETTINGS_VERSION
    models_dir: Path | None = None
    extra_catalogs: list[Path] = Field(default_factory=list)
    download: DownloadSettings = Field(default_factory=DownloadSettings)
    inference: InferenceSettings = Field(default_factory=InferenceSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)


def settings_path() -> Path:
    return config_dir() / SETTINGS_FILE


def load_settings(path: Path | None = None) -> Settings:
    """Settings from disk; defaults when the file does not exist yet."""
    path = path or settings_path()
    if not path.exists():
        return Settings()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise SettingsError(f"Settings file {path} cannot be read: {exc}") from exc
    version = raw.get("version") if isinstance(raw, dict) else None
    if not isinstance(version, int) or version > SETTINGS_VERSION:
        raise SettingsError(
            f"Settings file {path} has version {version!r}; this Doppel understands up to {SETTINGS_VERSION}"
        )
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise SettingsError(f"Settings file {path} is invalid: {exc.errors()[0]['msg']}") from exc


def save_settings(settings: Settings, path: Path | None = None) -> None:
    """Write atomically, so a crash mid-write never leaves a half file."""
    path = path or settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".settings-", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(settings.model_dump_json(indent=2))
    Path(tmp).replace(path)
