"""Rewritten model files the runtime loads instead of the originals, each used only after its gate.

Two rewrites, made once per machine and cached beside the engine caches (`<cache>/rewrites/`):
- a dynamic batch axis (app.inference.batch_axis) for batch-1 exports, kept when batched outputs equal
  the per-item outputs of the original (cosine ≥ 0.9999 per item, on the provider that will run it);
- fp16 (app.inference.fp16) for the CUDA provider, kept when it passes the parity gate against fp32
  (app.inference.parity: cosine mean ≥ 0.995, min ≥ 0.99 on realistic inputs).
A verdict, passed or failed, is remembered in `verdicts.json` keyed by the source file's SHA-256, the
tool's version, the provider and the GPU: a model that failed stays as it was, and check-env says why,
without the gate running again on every launch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

import torch

from app.inference.errors import ModelInputError, ProviderLoadError
from app.inference.loaded_model import LoadedModel, LoadSpec, ModelVariant, Tensors
from app.inference.parity import InputSpec, Parity, compare
from app.inference.providers import Provider
from app.inference.shapes import warmup_shape

log = logging.getLogger(__name__)

FOLDER = "rewrites"
VERDICT_FILE = "verdicts.json"
VERDICT_VERSION = 1
Kind = Literal["batch", "fp16"]
GATE_BATCH = 3  # items compared in one batched call against three single calls
BATCH_MEAN, BATCH_MIN = 0.9999, 0.999  # a batch must not change the maths, only the call count


@dataclass(frozen=True)
class RewriteVerdict:
    kind: Kind
    model_id: str
    passed: bool
    reason: str
    tool: str
    provider: str
    sm: str
    source_sha256: str
    file: str = ""  # the rewritten file's name in the rewrites folder, when passed
    sha256: str = ""
    cosine_mean: float | None = None
    cosine_min: float | None = None
    checked_at: float = 0.0


class VerdictFile:
    """The verdicts on disk: one JSON file, rewritten atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def all(self) -> dict[str, RewriteVerdict]:
        if not self.path.is_file():
            return {}
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            return {key: RewriteVerdict(**value) for key, value in raw.get("verdicts", {}).items()}
        except (OSError, ValueError, TypeError) as exc:
            log.warning("ignoring unreadable rewrite verdicts %s: %s", self.path, exc)
            return {}

    def store(self, key: str, verdict: RewriteVerdict) -> None:
        with self._lock:
            verdicts = self.all()
            verdicts[key] = verdict
            self.path.parent.mkdir(parents=True, exist_ok=True)
            payload = {
                "version": VERDICT_VERSION,
                "verdicts": {k: asdict(v) for k, v in sorted(verdicts.items())},
            }
            fd, tmp = tempfile.mkstemp(prefix=".verdicts-", dir=self.path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(payload, handle, indent=2)
            Path(tmp).replace(self.path)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class ModelRewrites:
    def __init__(self, cache_root: Path) -> None:
        self.folder = cache_root / FOLDER
        self.verdicts = VerdictFile(self.folder / VERDICT_FILE)
        self._lock = threading.Lock()
        self._model_locks: dict[str, threading.Lock] = {}  # one gate at a time per model

    # -- the two rewrites --------------------------------------------------------------------------

    def batched(self, spec: LoadSpec, provider: Provider) -> ModelVariant | None:
        """The model with a dynamic batch axis, if its batched outputs equal its per-item ones."""
        from app.inference import batch_axis  # onnx: imported by the GPU runs that rewrite, not by every run

        source, sha = spec.model.path, spec.model.sha256
        target = self.folder / f"{sha[:16]}-{batch_axis.TOOL}.onnx"

        def build() -> str | None:
            return batch_axis.make_batch_dynamic(source, target)

        def judge(candidate: LoadedModel, original: LoadedModel) -> Parity:
            return _batch_parity(spec, candidate, original)

        precision = spec.model.entry.precision
        return self._gated("batch", spec, provider, None, batch_axis.TOOL, target, build, judge, precision)

    def fp16(self, spec: LoadSpec, provider: Provider, base: ModelVariant | None) -> ModelVariant | None:
        """The model (or its batched variant) in fp16, if it passes the parity gate against fp32."""
        from app.inference import fp16  # onnx: imported by the GPU runs that rewrite, not by every run

        source = base.path if base else spec.model.path
        sha = base.sha256 if base else spec.model.sha256
        for attempt in range(len(fp16.ATTEMPTS)):
            tool = fp16.converter_id(attempt)
            target = self.folder / f"{sha[:16]}-{tool}.onnx"

            def build(attempt: int = attempt, target: Path = target) -> str | None:
                fp16.convert(source, target, attempt)
                return None

            def judge(candidate: LoadedModel, original: LoadedModel) -> Parity:
                return _fp16_parity(spec, candidate, original)

            found = self._gated("fp16", spec, provider, base, tool, target, build, judge, "fp16")
            if found is not None:
                return found
        return None

    # -- the gate --------------------------------------------------------------------------------

    def _gated(
        self,
        kind: Kind,
        spec: LoadSpec,
        provider: Provider,
        base: ModelVariant | None,
        tool: str,
        target: Path,
        build: Callable[[], str | None],
        judge: Callable[[LoadedModel, LoadedModel], Parity],
        precision: Literal["fp32", "fp16"],
    ) -> ModelVariant | None:
        source_sha = base.sha256 if base else spec.model.sha256
        key = f"{kind}:{source_sha[:16]}:{tool}:{provider.value}:{spec.sm or 'nogpu'}"
        with self._lock:
            model_lock = self._model_locks.setdefault(spec.model.id, threading.Lock())
        with model_lock:
            known = self.verdicts.all().get(key)
            if known is None or (known.passed and not (self.folder / known.file).is_file()):
                known = self._check(kind, spec, provider, base, tool, target, build, judge)
                self.verdicts.store(key, known)
                (log.info if known.passed else log.warning)(
                    "%s %s on %s: %s", spec.model.id, kind, provider.label, known.reason
                )
        if not known.passed:
            return None
        tag = f"{base.tag}+{kind}" if base else kind
        batched = kind == "batch" or (base is not None and base.batched)
        return ModelVariant(self.folder / known.file, known.sha256, tag, precision, batched)

    def _check(
        self,
        kind: Kind,
        spec: LoadSpec,
        provider: Provider,
        base: ModelVariant | None,
        tool: str,
        target: Path,
        build: Callable[[], str | None],
        judge: Callable[[LoadedModel, LoadedModel], Parity],
    ) -> RewriteVerdict:
        def verdict(passed: bool, reason: str, parity: Parity | None = None, sha: str = "") -> RewriteVerdict:
            return RewriteVerdict(
                kind,
                spec.model.id,
                passed,
                reason,
                tool,
                provider.value,
                spec.sm or "",
                base.sha256 if base else spec.model.sha256,
                target.name if passed else "",
                sha,
                parity.cosine_mean if parity else None,
                parity.cosine_min if parity else None,
                time.time(),
            )

        try:
            refused = build()
        except (OSError, ValueError, RuntimeError) as exc:
            return verdict(False, f"the rewrite failed: {type(exc).__name__}: {exc}")
        if refused:
            return verdict(False, refused)
        plain = replace(spec, cuda_graph_providers=frozenset(), variants={provider: base} if base else {})
        sha = _sha256(target)
        trial = ModelVariant(target, sha, kind, "fp32", kind == "batch")
        candidate_spec = replace(plain, variants={provider: trial})
        original = candidate = None
        try:
            original = LoadedModel(plain, provider)
            candidate = LoadedModel(candidate_spec, provider)
            parity = judge(candidate, original)
        except (ProviderLoadError, ModelInputError) as exc:
            target.unlink(missing_ok=True)
            return verdict(False, f"the rewritten file does not run: {exc}")
        except Exception as exc:  # noqa: BLE001  (any failure inside ORT means: keep the original)
            target.unlink(missing_ok=True)
            return verdict(False, f"the rewritten file does not run: {type(exc).__name__}: {exc}")
        finally:
            for loaded in (original, candidate):
                if loaded is not None:
                    loaded.close()
        if not parity.passed:
            target.unlink(missing_ok=True)
        return verdict(parity.passed, parity.reason, parity, sha if parity.passed else "")


def _input_specs(spec: LoadSpec, model: LoadedModel, batch: int) -> list[InputSpec]:
    entry = spec.model.entry
    specs = []
    for tensor, meta in zip(entry.inputs, model.inputs, strict=True):
        shape = warmup_shape(entry, tensor)
        if batch > 1 and meta.shape and isinstance(meta.shape[0], str):
            shape = (batch, *shape[1:])
        specs.append(InputSpec(meta.name, shape, meta.dtype))
    return specs


def _on(model: LoadedModel) -> Callable[[Tensors], Tensors]:
    device = model.device.torch_device
    return lambda feeds: {name: tensor.to(device) for name, tensor in feeds.items()}


def _fp16_parity(spec: LoadSpec, candidate: LoadedModel, original: LoadedModel) -> Parity:
    return compare(
        spec.model.entry,
        _input_specs(spec, original, 1),
        original.run,
        candidate.run,
        to_inputs=_on(original),
    )


def _batch_parity(spec: LoadSpec, candidate: LoadedModel, original: LoadedModel) -> Parity:
    batched_names = {m.name for m in candidate.inputs if m.shape and isinstance(m.shape[0], str)}

    def one_by_one(feeds: Tensors) -> Tensors:
        results: dict[str, list[torch.Tensor]] = {}
        for item in range(GATE_BATCH):
            single = {n: (t[item : item + 1] if n in batched_names else t) for n, t in feeds.items()}
            for name, value in original.run(single).items():
                results.setdefault(name, []).append(value)
        return {name: torch.cat(values) for name, values in results.items()}

    def per_item(runner: Callable[[Tensors], Tensors]) -> Callable[[Tensors], Tensors]:
        # Cosine per item, not over the whole batch: one wrong item must not hide among right ones.
        def run(feeds: Tensors) -> Tensors:
            out = runner(feeds)
            return {f"{n}[{i}]": v[i] for n, v in out.items() for i in range(GATE_BATCH)}

        return run

    return compare(
        spec.model.entry,
        _input_specs(spec, candidate, GATE_BATCH),
        per_item(one_by_one),
        per_item(candidate.run),
        samples=2,
        mean_at_least=BATCH_MEAN,
        min_at_least=BATCH_MIN,
        to_inputs=_on(original),
    )
