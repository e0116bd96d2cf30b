"""Which models may replay CUDA graphs, decided by probing each one rather than by a global switch.

The probe loads the model twice on the GPU provider, once plain and once with CUDA graphs, lets the graph
capture, replays it on fresh inputs and compares with the plain run. Only a match within tolerance turns
graphs on. Results are kept in a compatibility matrix file keyed like the TensorRT engine cache (model
SHA-256, SM architecture, runtime version, precision): another GPU or a runtime upgrade probes again.
Models whose output size depends on the data (detectors with NMS, dynamic anchors) cannot be captured
and are expected to be refused.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

import torch

from app.inference.errors import ModelInputError, ProviderLoadError
from app.inference.loaded_model import LoadedModel, LoadSpec
from app.inference.options import EngineKey
from app.inference.ort import ORT_VERSION
from app.inference.providers import Precision, Provider

log = logging.getLogger(__name__)

MATRIX_FILE = "cuda_graphs.json"
MATRIX_VERSION = 1
Verdict = Literal["enabled", "refused", "skipped"]
REPLAYS = 3  # fresh inputs compared after capture


@dataclass(frozen=True)
class ProbeResult:
    model_id: str
    provider: str
    verdict: Verdict
    reason: str
    max_abs_diff: float | None = None
    tolerance: float | None = None
    sha256: str = ""
    sm: str = ""
    runtime: str = ""
    precision: str = ""
    probed_at: float = 0.0

    @property
    def enabled(self) -> bool:
        return self.verdict == "enabled"


def graph_key(sha256: str, sm: str, provider: Provider, precision: Precision, trt: str | None) -> EngineKey:
    runtime = f"ort{ORT_VERSION}-{provider.value}" + (f"-trt{trt}" if provider is Provider.TENSORRT else "")
    return EngineKey(sha256, sm, runtime, precision)


def key_for(spec: LoadSpec, provider: Provider) -> EngineKey:
    """The matrix key of a model on a provider: TensorRT runs the requested precision, CUDA the
    precision of the file it loads (a rewritten variant has its own hash and precision)."""
    variant = spec.variant(provider)
    if provider is Provider.TENSORRT:
        precision = spec.precision
    else:
        precision = variant.precision if variant else spec.model.entry.precision
    return graph_key(spec.sha256_for(provider), spec.sm or "", provider, precision, spec.tensorrt_version)


class GraphMatrix:
    """The probe results on disk: one JSON file, rewritten atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def results(self) -> dict[str, ProbeResult]:
        if not self.path.is_file():
            return {}
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            return {key: ProbeResult(**value) for key, value in raw.get("results", {}).items()}
        except (OSError, ValueError, TypeError) as exc:
            log.warning("ignoring unreadable CUDA-graph matrix %s: %s", self.path, exc)
            return {}

    def lookup(self, key: EngineKey) -> ProbeResult | None:
        return self.results().get(key.folder_name)

    def store(self, key: EngineKey, result: ProbeResult) -> None:
        with self._lock:
            results = self.results()
            results[key.folder_name] = result
            self.path.parent.mkdir(parents=True, exist_ok=True)
            payload = {
                "version": MATRIX_VERSION,
                "results": {k: asdict(v) for k, v in sorted(results.items())},
            }
            fd, tmp = tempfile.mkstemp(prefix=".cuda_graphs-", dir=self.path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(payload, handle, indent=2)
            Path(tmp).replace(self.path)


def tolerance_for(precision: str) -> tuple[float, float]:
    """(relative, absolute floor) for comparing a replay with a plain run."""
    return (1e-2, 1e-2) if precision == "fp16" else (1e-3, 1e-4)


def _max_abs_diff(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> tuple[float, float]:
    """(largest absolute difference, largest magnitude in the plain run) over all outputs."""
    diff, scale = 0.0, 0.0
    for name, expected in want.items():
        a, b = got[name].double(), expected.double()
        if a.shape != b.shape:
            return float("inf"), 1.0
        if a.numel():
            diff = max(diff, float((a - b).abs().max()))
            scale = max(scale, float(b.abs().max()))
    return diff, scale


def probe(spec: LoadSpec, provider: Provider = Provider.CUDA) -> ProbeResult:
    """Probe one model on one GPU provider. Never raises: a failure is a refusal with its reason."""
    entry = spec.model.entry
    key = key_for(spec, provider)
    precision = key.precision

    def result(
        verdict: Verdict, reason: str, diff: float | None = None, tol: float | None = None
    ) -> ProbeResult:
        return ProbeResult(
            entry.id,
            provider.value,
            verdict,
            reason,
            diff,
            tol,
            key.sha256,
            key.sm,
            key.runtime,
            precision,
            time.time(),
        )

    if entry.cuda_graphs is False:
        return result("skipped", "the catalog marks this model unfit for CUDA graphs")
    if not torch.cuda.is_available():
        return result("skipped", "no CUDA GPU")
    plain_spec = replace(spec, cuda_graph_providers=frozenset())
    graph_spec = replace(spec, cuda_graph_providers=frozenset({provider}))
    relative, floor = tolerance_for(precision)
    plain = graphed = None
    try:
        plain = LoadedModel(plain_spec, provider)
        graphed = LoadedModel(graph_spec, provider)
        first = graphed.example_inputs(seed=1)
        graphed.capture_graphs(first)  # as preload does: runs ORT needs, then the capture
        worst, scale = 0.0, 0.0
        for seed in range(2, 2 + REPLAYS):
            fresh = plain.example_inputs(seed=seed)
            diff, magnitude = _max_abs_diff(graphed.run(fresh), plain.run(fresh))
            worst, scale = max(worst, diff), max(scale, magnitude)
    except (ProviderLoadError, ModelInputError) as exc:
        return result("refused", str(exc))
    except Exception as exc:  # noqa: BLE001  (a capture failure inside ORT is a refusal, not a crash)
        return result("refused", f"{type(exc).__name__}: {exc}")
    finally:
        for loaded in (plain, graphed):
            if loaded is not None:
                loaded.close()
    tolerance = max(floor, relative * scale)
    if worst <= tolerance:
        reason = f"replays match a plain run (max |diff| {worst:.3g} <= {tolerance:.3g})"
        verdict: Verdict = "enabled"
    else:
        reason = f"replays differ from a plain run (max |diff| {worst:.3g} > {tolerance:.3g})"
        verdict = "refused"
    return result(verdict, reason, worst, tolerance)
