"""Rewritten model files the runtime loads instead of the originals, each used only after its gate.

Two rewrites, made once per machine and cached beside the engine caches (`<cache>/rewrites/`):
- a dynamic batch axis (app.inference.batch_axis) for batch-1 exports, kept when batched outputs equal
  the per-item outputs of the original (cosine ≥ 0.9999 per item, on the provider that will run it);
- fp16 (app.inference.fp16) for the CUDA provider, kept when it passes the parity gate against fp32
  (app.inference.parity: cosine mean ≥ 0.995, min ≥ 0.99 on realistic inputs).
A verdict, passed or failed, is remembered in `verdicts.json` keyed by the source file's SHA-256, the
tool's version, the provider and the GPU: a model that failed stays as it was, and check-env says why,
without the gate running again on every launch.

Writing a rewrite is seconds of single-threaded ONNX and NumPy work per large model (inswapper's fp16
conversion about 10 s on CI's CPU), and a first launch writes up to two per model. `prebuild` starts
those of a job's large models at once, each model's in a process of its own, before the models load;
the gates (which need the GPU) then find their files written and only judge them. A rewrite's file is
named after its source's hash and the tool, and written under a temporary name then renamed, so a file
found under its name is complete and made from that source.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, wait
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
PREBUILD_MIN_BYTES = 16 << 20  # smaller files are rewritten in-process in well under a second
PREBUILD_PROCESSES = 4  # at most: each holds a model (and its rewrite) in memory


@dataclass(frozen=True)
class RewritePlan:
    """The rewrites one model's first load will want written: the batch axis, then fp16 of the result
    (or of the original). Picklable: it goes to a builder process."""

    model_id: str
    source: Path
    source_sha256: str
    batch: bool
    fp16: bool


def rewrite_path(folder: Path, source_sha256: str, tool: str) -> Path:
    return folder / f"{source_sha256[:16]}-{tool}.onnx"


def build_planned(plan: RewritePlan, folder: Path) -> dict[str, str | None]:
    """In a builder process: write the planned files that are not there yet. By file: None when
    written (or found), else why the rewrite cannot be made."""
    from app.inference import batch_axis, fp16

    outcomes: dict[str, str | None] = {}
    source, sha = plan.source, plan.source_sha256
    if plan.batch:
        target = rewrite_path(folder, sha, batch_axis.TOOL)
        refused = None if target.is_file() else batch_axis.make_batch_dynamic(source, target)
        outcomes[str(target)] = refused
        if refused:
            return outcomes  # fp16 of the original then: made in-process, if the gate gets there
        source, sha = target, _sha256(target)
    if plan.fp16:
        target = rewrite_path(folder, sha, fp16.converter_id(0))
        if not target.is_file():
            fp16.convert(source, target, 0)
        outcomes[str(target)] = None
    return outcomes


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
        self._prebuilding: dict[str, Future[dict[str, str | None]]] = {}  # by model id

    def has_verdict(
        self, kind: Kind, source_sha256: str, tool: str, provider: Provider, sm: str | None
    ) -> bool:
        return _verdict_key(kind, source_sha256, tool, provider, sm) in self.verdicts.all()

    def prebuild(self, plans: Sequence[RewritePlan]) -> None:
        """Start writing the planned files of large models, one builder process per model; the gates
        wait for a model's builder before judging its files (and make any it did not)."""
        with self._lock:  # a model's builder, running or done, is started once
            plans = [p for p in plans if p.model_id not in self._prebuilding]
        plans = [p for p in plans if p.source.stat().st_size >= PREBUILD_MIN_BYTES]
        if not plans:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        # spawn: a fork would copy this process's CUDA context and threads into the builders.
        builders = ProcessPoolExecutor(
            max_workers=min(len(plans), PREBUILD_PROCESSES, os.cpu_count() or 1),
            mp_context=multiprocessing.get_context("spawn"),
        )
        with self._lock:
            for plan in plans:
                self._prebuilding[plan.model_id] = builders.submit(build_planned, plan, self.folder)
        builders.shutdown(wait=False)  # the processes end when their last file is written
        log.info("writing rewrites of %s in %d process(es)", ", ".join(p.model_id for p in plans), len(plans))

    def building(self, model_id: str) -> bool:
        """Whether this model's builder process is still writing its rewrites."""
        with self._lock:
            future = self._prebuilding.get(model_id)
        return future is not None and not future.done()

    def await_builder(self, model_id: str) -> None:
        """Wait until this model's builder process, if it has one, is done (or dead). A load calls it
        before it takes the GPU set-up lock, so that a model whose rewrites are still being written
        does not hold up the loads and gates of those whose files are ready."""
        with self._lock:
            building = self._prebuilding.get(model_id)
        if building is not None:
            wait([building])

    def _prebuilt(self, model_id: str, target: Path) -> tuple[bool, str | None]:
        """Whether a builder process dealt with `target` (waiting for it), and why it refused to."""
        with self._lock:
            building = self._prebuilding.get(model_id)
        if building is None:
            return False, None
        try:
            outcomes = building.result()
        except Exception as exc:  # noqa: BLE001  (a builder that died: the file is made here instead)
            log.warning("rewriting %s in a builder process failed (%s); rewriting it here", model_id, exc)
            return False, None
        if str(target) not in outcomes:
            return False, None
        return True, outcomes[str(target)]

    # -- the two rewrites --------------------------------------------------------------------------

    def batched(self, spec: LoadSpec, provider: Provider) -> ModelVariant | None:
        """The model with a dynamic batch axis, if its batched outputs equal its per-item ones."""
        from app.inference import batch_axis  # onnx: imported by the GPU runs that rewrite, not by every run

        source, sha = spec.model.path, spec.model.sha256
        target = rewrite_path(self.folder, sha, batch_axis.TOOL)

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
            target = rewrite_path(self.folder, sha, tool)

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
        key = _verdict_key(kind, base.sha256 if base else spec.model.sha256, tool, provider, spec.sm)
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
            prebuilt, refused = self._prebuilt(spec.model.id, target)
            if not (prebuilt and (refused or target.is_file())):
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


def _verdict_key(kind: Kind, source_sha256: str, tool: str, provider: Provider, sm: str | None) -> str:
    return f"{kind}:{source_sha256[:16]}:{tool}:{provider.value}:{sm or 'nogpu'}"


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
