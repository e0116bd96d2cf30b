"""ONNX Runtime options for one model on one provider: graph optimisation, cuDNN search, TensorRT.

TensorRT engines and timing caches live in a folder keyed by the model file's SHA-256, the GPU's SM
architecture, the TensorRT version and the precision: a new model file, a different GPU generation or a
TensorRT upgrade each get a fresh folder, so a stale engine is never loaded.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.core.settings import InferenceSettings
from app.inference.ort import onnxruntime
from app.inference.providers import Precision, Provider
from app.inference.shapes import is_dynamic, shape_range
from app.models.catalog import ModelEntry

ProviderOptions = dict[str, Any]


@dataclass(frozen=True)
class EngineKey:
    """What a built TensorRT engine (and a CUDA-graph probe result) depends on."""

    sha256: str
    sm: str
    runtime: str  # "trt10.9.0" for TensorRT engines; "ort1.31.1" for CUDA-graph results
    precision: Precision

    @property
    def folder_name(self) -> str:
        return f"{self.sha256[:16]}-{self.sm}-{self.runtime}-{self.precision}"


def engine_cache_dir(cache_root: Path, key: EngineKey) -> Path:
    """The engine and timing cache folder for this key, created with a note of what it holds."""
    folder = cache_root / "tensorrt" / key.folder_name
    folder.mkdir(parents=True, exist_ok=True)
    note = folder / "key.json"
    if not note.exists():
        note.write_text(
            json.dumps(
                {"sha256": key.sha256, "sm": key.sm, "runtime": key.runtime, "precision": key.precision},
                indent=2,
            ),
            encoding="utf-8",
        )
    return folder


CPU_THREADS_VARIABLE = "DOPPEL_CPU_THREADS"


def cpu_threads() -> int | None:
    """DOPPEL_CPU_THREADS=N: each CPU session computes on N threads, which wait without spinning.
    Unset (or not a positive number): ONNX Runtime's default, one spinning thread per core."""
    value = os.environ.get(CPU_THREADS_VARIABLE, "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def session_options(provider: Provider) -> Any:
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    if provider.on_gpu:
        # One CPU thread is enough to feed a GPU; more only compete with decode and pre-processing.
        options.intra_op_num_threads = 1
    elif (threads := cpu_threads()) is not None:
        # Several processes share the cores (parallel test workers, a render farm): spinning threads
        # waiting for work would only take the cores from the other processes.
        options.intra_op_num_threads = threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def _profile_text(names_and_shapes: list[tuple[str, tuple[int, ...]]]) -> str:
    return ",".join(f"{name}:{'x'.join(str(d) for d in shape)}" for name, shape in names_and_shapes)


def tensorrt_profiles(entry: ModelEntry, settings: InferenceSettings) -> ProviderOptions:
    """trt_profile_{min,opt,max}_shapes for the dynamic inputs the catalog names; {} if none."""
    ranges = [
        (spec.name, shape_range(entry, spec, settings.tensorrt))
        for spec in entry.inputs
        if spec.name is not None and is_dynamic(spec)
    ]
    if not ranges:
        return {}
    return {
        "trt_profile_min_shapes": _profile_text([(n, r.minimum) for n, r in ranges]),
        "trt_profile_opt_shapes": _profile_text([(n, r.optimum) for n, r in ranges]),
        "trt_profile_max_shapes": _profile_text([(n, r.maximum) for n, r in ranges]),
    }


def provider_options(
    provider: Provider,
    entry: ModelEntry,
    settings: InferenceSettings,
    *,
    precision: Precision,
    cuda_graph: bool,
    engine_dir: Path | None,
    stream: int | None = None,
) -> ProviderOptions:
    """`stream`: a CUDA stream handle the CUDA provider computes on (app.inference.streams)."""
    device = str(settings.device_index)
    if provider is Provider.CUDA:
        own_stream = {"has_user_compute_stream": "1", "user_compute_stream": str(stream)} if stream else {}
        return {
            "device_id": device,
            "cudnn_conv_algo_search": settings.cudnn_conv_algo_search.upper(),
            "cudnn_conv_use_max_workspace": "1" if settings.cudnn_max_workspace else "0",
            "use_tf32": "1" if settings.allow_tf32 else "0",
            "arena_extend_strategy": "kSameAsRequested",  # grow by what is asked: less VRAM held idle
            "do_copy_in_default_stream": "1",
            "enable_cuda_graph": "1" if cuda_graph else "0",
            **own_stream,
        }
    if provider is Provider.TENSORRT:
        assert engine_dir is not None, "TensorRT needs an engine cache folder"
        return {
            "device_id": device,
            "trt_fp16_enable": precision == "fp16",
            "trt_engine_cache_enable": True,
            "trt_engine_cache_path": str(engine_dir),
            "trt_timing_cache_enable": True,
            "trt_timing_cache_path": str(engine_dir),
            "trt_builder_optimization_level": settings.tensorrt.builder_optimization_level,
            "trt_max_workspace_size": settings.tensorrt.max_workspace_mb * (1 << 20),
            "trt_cuda_graph_enable": cuda_graph,
            **tensorrt_profiles(entry, settings),
        }
    return {}
