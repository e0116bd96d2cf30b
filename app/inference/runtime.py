"""InferenceRuntime: the front door. Model code asks it for a session by model id; it never builds one.

It turns the catalog's hints and the user's settings into a provider chain and a precision, finds the
model file through the store, consults the CUDA-graph matrix, and leases sessions from the pool.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from pathlib import Path

import torch

from app.core import graphed
from app.core.errors import DoppelError
from app.core.milestones import mark
from app.core.paths import cache_dir
from app.core.settings import InferenceSettings
from app.core.telemetry import get_telemetry
from app.inference.calls import CallLog
from app.inference.cuda_graphs import MATRIX_FILE, GraphMatrix, ProbeResult, key_for, probe
from app.inference.device import DeviceFacts, device_facts
from app.inference.discovery import ProviderStatus, discover
from app.inference.errors import ModelInputError, ModelNotReadyError
from app.inference.fallbacks import FALLBACK_FILE, FallbackEvent, FallbackLog
from app.inference.faults import FaultPlan
from app.inference.graph_runs import GPU_SETUP, buckets_up_to
from app.inference.loaded_model import LoadSpec, ModelFile, ModelVariant, Tensors
from app.inference.pool import PoolLimits, SessionKey, SessionPool
from app.inference.providers import GRAPH_PROVIDERS, Hint, Precision, Provider, fallback_chain, parse_hint
from app.inference.rewrites import ModelRewrites, RewritePlan
from app.inference.session import DisabledProviders, Session
from app.inference.shapes import declares_a_batch
from app.models.catalog import ModelEntry
from app.models.store import ModelState, ModelStore

log = logging.getLogger(__name__)

_MB = 1 << 20
DEFAULT_VRAM_SHARE = 0.8
AUTO_PROBE = True  # probe each model's CUDA graphs unasked, in preload (see _probe_now)
PRELOAD_THREADS = 4  # ORT session creation and cuDNN's search overlap well up to about this many


def pool_limits(settings: InferenceSettings, facts: DeviceFacts) -> PoolLimits:
    vram = settings.vram_budget_mb * _MB if settings.vram_budget_mb else None
    gpu = facts.gpu(settings.device_index)
    if vram is None and gpu is not None:
        vram = int(gpu.vram_total_bytes * DEFAULT_VRAM_SHARE)
    host = settings.host_budget_mb * _MB if settings.host_budget_mb else None
    return PoolLimits(settings.max_sessions, vram, host)


class InferenceRuntime:
    def __init__(
        self,
        store: ModelStore,
        settings: InferenceSettings | None = None,
        *,
        cache_root: Path | None = None,
        fallbacks: FallbackLog | None = None,
        faults: FaultPlan | None = None,
        backends: Mapping[Provider, str] | None = None,
        probe_providers: bool = False,
        defer_rewrites: bool = False,
    ) -> None:
        """`defer_rewrites`: a model whose rewrites are still to be written or judged when it loads
        (a builder process at work, or no verdict yet) runs from its original file for now, and
        `settle_rewrites` makes and judges them later. For a command that runs one job and ends (a cold
        start's first frame need not wait ~20 s for inswapper's rewrite); the studio keeps the default,
        whose models change under running threads."""
        self.store = store
        self.settings = settings or InferenceSettings()
        self.cache_root = cache_root or cache_dir()
        self.facts = device_facts()
        self.statuses: dict[Provider, ProviderStatus] = dict(discover(probe_providers))
        self.fallbacks = fallbacks or FallbackLog(self.cache_root / FALLBACK_FILE)
        self.faults = faults if faults is not None else FaultPlan.from_environment()
        self.backends = dict(backends or {})
        self.disabled = DisabledProviders()
        self.graphs = GraphMatrix(self.cache_root / MATRIX_FILE)
        graphed.set_enabled(self.settings.cuda_graphs != "off")  # the frame path's torch graphs too
        self.rewrites = ModelRewrites(self.cache_root)
        self._specs: dict[tuple[str, Precision], LoadSpec] = {}
        self._specs_lock = threading.Lock()
        self.defer_rewrites = defer_rewrites
        self._deferred: set[str] = set()  # models running from their original file until settled
        self._settling: set[str] = set()  # models settle_rewrites is judging now: never deferred again
        self._preloading = 0  # preloads under way: the only time a graph probe may run unasked
        self.pool = SessionPool(self._load, pool_limits(self.settings, self.facts))
        # Items per model call when callers batch: the largest CUDA-graph bucket, so batches replay.
        self.batch_limit = buckets_up_to(self.settings.max_graph_batch)[-1]
        self.call_log: CallLog | None = None  # attach one to count model calls (the benchmark does)
        self.fallbacks.subscribe(_report_fallback)  # to the opt-in local telemetry (a no-op when off)

    # -- choices ---------------------------------------------------------------------------------

    @property
    def usable(self) -> set[Provider]:
        usable = {p for p, s in self.statuses.items() if s.usable}
        return usable | set(self.backends)  # a test backend counts as present

    def hint_for(self, model_id: str, override: str | None = None) -> Hint:
        """Per call, then per model in settings, then the user's global choice; "auto" defers to the
        catalog entry's own hint."""
        if override:
            return parse_hint(override, "provider")
        chosen = self.settings.model_providers.get(model_id) or self.settings.provider
        if chosen == "auto":
            return self.store.catalog.get(model_id).provider_hint
        return chosen

    def precision_for(self, model_id: str, override: str | None = None) -> Precision:
        chosen = override or self.settings.model_precisions.get(model_id) or self.settings.precision
        if chosen not in ("fp16", "fp32"):
            raise ValueError(f"precision: '{chosen}' is not fp16 or fp32")
        return "fp16" if chosen == "fp16" else "fp32"

    def chain_for(self, model_id: str, provider: str | None = None) -> list[Provider]:
        return fallback_chain(self.hint_for(model_id, provider), self.usable, self.disabled.of(model_id))

    def key_for(self, model_id: str, provider: str | None = None, precision: str | None = None) -> SessionKey:
        chain = self.chain_for(model_id, provider)
        return SessionKey(
            model_id, chain[0], self.precision_for(model_id, precision), self.settings.device_index
        )

    def model_file(self, model_id: str) -> ModelFile:
        entry = self.store.catalog.get(model_id)
        status = self.store.status(entry)
        if not status.usable:
            what = {
                ModelState.MISSING: "is not downloaded",
                ModelState.PARTIAL: "is only partly downloaded",
                ModelState.CORRUPT: "does not match its SHA-256 (damaged or a different file)",
            }.get(status.state, f"is {status.state}")
            raise ModelNotReadyError(
                f"Model '{model_id}' ({status.path}) {what}: run `python main.py models download {model_id}`"
            )
        digest = self.store.file_hash(status.path)
        return ModelFile(entry, status.path, digest, status.state is ModelState.STANDIN)

    def load_spec(self, model_id: str, precision: Precision) -> LoadSpec:
        """What a load of this model needs: its file, the rewrites each provider loads instead (made
        and gated once per machine), and where it replays CUDA graphs. Worked out once per runtime."""
        with self._specs_lock:
            known = self._specs.get((model_id, precision))
            if known is not None and known.model.path.is_file():
                return known
        # Outside the lock: a builder still writing this model's rewrites is waited for (or, where the
        # runtime defers, left to settle_rewrites) without holding up other models' specs.
        self._before_rewrites(model_id)
        with self._specs_lock:
            known = self._specs.get((model_id, precision))
            if known is not None and known.model.path.is_file():
                return known
            deferred = model_id in self._deferred
            spec = LoadSpec(
                model=self.model_file(model_id),
                settings=self.settings,
                precision=precision,
                cuda_graph_providers=frozenset(),
                cache_root=self.cache_root,
                sm=self._sm(),
                tensorrt_version=self.facts.tensorrt,
                faults=self.faults,
                backends=self.backends,
            )
            if not deferred:  # a deferred model's rewrites are judged by settle_rewrites
                spec = replace(spec, variants=self._variants(spec))
            spec = replace(spec, cuda_graph_providers=self._graph_providers(spec))
            self._specs[(model_id, precision)] = spec
            return spec

    def deferred_models(self) -> list[str]:
        """The models running from their original files until `settle_rewrites`."""
        with self._specs_lock:
            return sorted(self._deferred)

    def settle_rewrites(self) -> None:
        """Judge the rewrites of the models that ran from their original files (`defer_rewrites`),
        once their builders are done, so the next launch loads them. Only while no job runs: the
        models' sessions are closed and their next load takes the rewrite."""
        with self._specs_lock:
            deferred, self._deferred = sorted(self._deferred), set()
            for key in [key for key in self._specs if key[0] in deferred]:
                del self._specs[key]
        for model_id in deferred:
            self.pool.discard(model_id)
            self.rewrites.await_builder(model_id)
            with self._specs_lock:
                self._preloading += 1  # no job runs: the rewritten files may be probed for graphs too
                self._settling.add(model_id)
            try:
                with GPU_SETUP:
                    self.load_spec(model_id, self.precision_for(model_id))
            except Exception as exc:  # noqa: BLE001 - a job's output is written: a failure here is only lost speed
                log.warning("rewrites of %s not judged: %s", model_id, exc)
            else:
                log.info("rewrites of %s judged after the job; the next launch loads them", model_id)
            finally:
                with self._specs_lock:
                    self._preloading -= 1
                    self._settling.discard(model_id)

    def takes_a_batch(self, model_id: str) -> bool:
        """Whether several crops or frames go through this model in one call: the catalog says so, or
        its file was given a batch axis that passed its gate on this machine."""
        entry = self.store.catalog.get(model_id)
        if declares_a_batch(entry):
            return True
        if not self._batch_rewrite_wanted():
            return False
        spec = self.load_spec(model_id, self.precision_for(model_id))
        first = self.chain_for(model_id)[0]
        variant = spec.variant(first)
        return variant is not None and variant.batched

    def describe(self, model_id: str) -> dict[str, object]:
        """How this model runs here: the provider its chain starts with, the file it loads there
        (original or a rewrite), what that computes in, whether it takes a batch and replays CUDA
        graphs. For reports (the benchmark, check-env)."""
        precision = self.precision_for(model_id)
        spec = self.load_spec(model_id, precision)
        provider = self.chain_for(model_id)[0]
        variant = spec.variant(provider)
        return {
            "provider": provider.label,
            "file": variant.tag if variant else "original",
            "computes_in": variant.precision if variant else spec.model.entry.precision,
            "batch": self.takes_a_batch(model_id),
            "cuda_graphs": provider in spec.cuda_graph_providers,
        }

    def _gpu_provider(self) -> Provider | None:
        return next((p for p in (Provider.CUDA, Provider.TENSORRT) if p in self.usable), None)

    def _batch_rewrite_wanted(self) -> bool:
        # Batches pay on a GPU; on the CPU they only cost the gate's time.
        return self.settings.batch_axis == "auto" and self._gpu_provider() is not None

    def _fast_fp16(self) -> bool:
        """fp16 tensor cores (Volta, sm_70, and later), or a test's stand-in CUDA."""
        if Provider.CUDA in self.backends:
            return True
        gpu = self.facts.gpu(self.settings.device_index)
        return gpu is not None and int(gpu.sm.removeprefix("sm_") or 0) >= 70

    def _sm(self) -> str | None:
        gpu = self.facts.gpu(self.settings.device_index)
        return gpu.sm if gpu else None

    def _batch_gate_provider(self, entry: ModelEntry) -> Provider | None:
        """Where a batch-axis rewrite of this model is judged, when one is wanted."""
        gate_on = self._gpu_provider()
        if gate_on is None or not self._batch_rewrite_wanted() or declares_a_batch(entry):
            return None
        return Provider.CUDA if Provider.CUDA in self.usable else gate_on

    def _wants_fp16(self, entry: ModelEntry, precision: Precision) -> bool:
        return (
            precision == "fp16"
            and entry.precision == "fp32"
            and self._fast_fp16()
            and Provider.CUDA in self.usable
        )

    def _variants(self, spec: LoadSpec) -> dict[Provider, ModelVariant]:
        entry = spec.model.entry
        variants: dict[Provider, ModelVariant] = {}
        batched = None
        batch_gate = self._batch_gate_provider(entry)
        if batch_gate is not None:
            batched = self.rewrites.batched(spec, batch_gate)
            if batched is not None:
                # Not TensorRT: its engines need optimisation profiles for every dynamic axis.
                variants = {Provider.CUDA: batched, Provider.CPU: batched}
        if self._wants_fp16(entry, spec.precision):
            converted = self.rewrites.fp16(spec, Provider.CUDA, batched)
            if converted is not None:
                variants[Provider.CUDA] = converted
        return variants

    def _rewrite_plan(self, model_id: str) -> RewritePlan | None:
        """The rewrites this model's first load would write (those with no verdict on this machine)."""
        from app.inference import batch_axis, fp16  # onnx: only where rewrites are made

        try:
            model = self.model_file(model_id)
        except DoppelError:
            return None  # its load reports it
        entry, sm = model.entry, self._sm()
        batch_gate = self._batch_gate_provider(entry)
        batch = batch_gate is not None and not self.rewrites.has_verdict(
            "batch", model.sha256, batch_axis.TOOL, batch_gate, sm
        )
        # fp16 of a batched file is judged under that file's hash, unknown until it is written: with
        # the batch axis still to come, fp16 is planned too; with it known, fp16 is left to the load.
        half = self._wants_fp16(entry, self.precision_for(model_id)) and (
            batch
            or (
                batch_gate is None
                and not self.rewrites.has_verdict(
                    "fp16", model.sha256, fp16.converter_id(0), Provider.CUDA, sm
                )
            )
        )
        if not (batch or half):
            return None
        return RewritePlan(model_id, model.path, model.sha256, batch, half)

    def _graph_providers(self, spec: LoadSpec) -> frozenset[Provider]:
        """Providers on which this model replays CUDA graphs: those where its probe passed."""
        if not self._graphs_wanted(spec):
            return frozenset()
        passed = set()
        for provider in GRAPH_PROVIDERS:
            key = key_for(spec, provider)
            found = self.graphs.lookup(key)
            if found is None and self._probe_now(provider):
                # Once per model file, GPU and runtime version: the verdict is kept in the matrix.
                found = probe(spec, provider)
                self.graphs.store(key, found)
                log.info(
                    "CUDA graphs for %s on %s: %s (%s)",
                    spec.model.id,
                    provider.label,
                    found.verdict,
                    found.reason,
                )
            if found is not None and found.enabled:
                passed.add(provider)
        return frozenset(passed)

    def _probe_now(self, provider: Provider) -> bool:
        """Whether to probe now, unasked: only inside preload, before a job's threads start. A probe
        captures, and a capture beside running GPU work fails both (app.inference.graph_runs); a
        model loaded mid-job (a pool reload, a model switched live) runs without graphs until then."""
        del provider
        return AUTO_PROBE and self._preloading > 0

    def _graphs_wanted(self, spec: LoadSpec) -> bool:
        """Settings, catalog and GPU allow CUDA graphs for this model (whether they pass is the probe's)."""
        allowed = self.settings.cuda_graphs != "off" and spec.model.entry.cuda_graphs is not False
        return allowed and spec.sm is not None

    def _unjudged(self, spec: LoadSpec) -> bool:
        """Whether a probe would run for this spec now: graphs wanted and no verdict kept yet."""
        return self._graphs_wanted(spec) and any(
            self.graphs.lookup(key_for(spec, p)) is None for p in GRAPH_PROVIDERS
        )

    def _forget_unjudged(self, model_ids: Sequence[str]) -> None:
        """Specs worked out before any probe (a model loaded outside preload) are worked out again, and
        their idle sessions closed, so that this preload probes and loads them with graphs."""
        with self._specs_lock:
            stale = [key for key, spec in self._specs.items() if key[0] in model_ids and self._unjudged(spec)]
            for key in stale:
                del self._specs[key]
        for model_id in {key[0] for key in stale}:
            self.pool.discard(model_id)

    # -- sessions --------------------------------------------------------------------------------

    def _load(self, key: SessionKey) -> Session:
        # The key's provider is where the chain starts; the slower ones follow it.
        chain = fallback_chain(
            parse_hint(key.provider.value, "provider"), self.usable, self.disabled.of(key.model_id)
        )
        # CUDA set-up one model at a time: a graph probe captures, and a capture must not overlap another
        # thread's CUDA work (app.inference.graph_runs). Rewrites made earlier are cached per machine;
        # those being written now are waited for first, without the lock (a cold start's 554 MB
        # inswapper held every other model's load and gate for its builder's ~20 s on the H200).
        if chain[0].on_gpu:
            self._before_rewrites(key.model_id)
        with GPU_SETUP if chain[0].on_gpu else nullcontext():
            spec = self.load_spec(key.model_id, key.precision)
            session = Session(spec, chain, self.fallbacks, self.disabled)
            if self.settings.warmup_on_load:
                session.warmup()
        return session

    def _before_rewrites(self, model_id: str) -> None:
        """Before a spec is worked out: defer its rewrites (`defer_rewrites`) or wait for its builder."""
        if self._gpu_provider() is None or model_id in self._deferred:  # a load asks, then its spec
            return
        if self.defer_rewrites and model_id not in self._settling and self._rewrites_pending(model_id):
            self._defer(model_id)
        else:
            self.rewrites.await_builder(model_id)

    def _rewrites_pending(self, model_id: str) -> bool:
        """Whether a load would write or judge rewrites first: a builder is still writing them, or
        some have no verdict on this machine yet (small models are rewritten in the loading process)."""
        if self.rewrites.building(model_id):
            return True
        with self._specs_lock:
            if any(key[0] == model_id for key in self._specs):
                return False  # worked out already
        return self._rewrite_plan(model_id) is not None

    def _defer(self, model_id: str) -> None:
        with self._specs_lock:
            if model_id not in self._deferred and not any(key[0] == model_id for key in self._specs):
                self._deferred.add(model_id)
                log.info("%s runs from its original file while its rewrites are written", model_id)

    @contextmanager
    def session(
        self, model_id: str, provider: str | None = None, precision: str | None = None
    ) -> Iterator[Session]:
        with self.pool.lease(self.key_for(model_id, provider, precision)) as session:
            yield session

    def is_loaded(self, model_id: str) -> bool:
        """Whether the pool holds a session of this model now (on any provider: a fallback moves it),
        so a caller can tell a lease that returns at once from one that loads first."""
        return any(key.model_id == model_id for key in self.pool.session_keys())

    def run(self, model_id: str, feeds: Mapping[str, torch.Tensor], provider: str | None = None) -> Tensors:
        if self.call_log is not None:
            self.call_log.record(model_id, feeds)
        with self.session(model_id, provider) as session:
            return session.run(feeds)

    def run_ordered(self, model_id: str, *tensors: torch.Tensor) -> list[torch.Tensor]:
        """Feed a model its inputs in order (the catalog's, else the file's), so callers need not know
        names a publisher left unpublished; its outputs in order."""
        with self.session(model_id) as session:
            if len(tensors) != len(session.input_names):
                raise ModelInputError(
                    f"'{model_id}' takes {len(session.input_names)} input(s), {len(tensors)} were given"
                )
            feeds = dict(zip(session.input_names, tensors, strict=True))
            if self.call_log is not None:
                self.call_log.record(model_id, feeds)
            outputs = session.run(feeds)
            return [outputs[name] for name in session.output_names]

    def preload(self, model_ids: Sequence[str], parallel: int = PRELOAD_THREADS) -> None:
        """Load (and warm up) these models before a job's threads start, side by side where that is safe
        (CPU loads; CUDA set-up takes turns, app.inference.graph_runs), then capture their CUDA graphs
        one by one. A model that cannot load is left for its first real use, which reports it.
        Unjudged models are probed for CUDA graphs here (and only here, see _probe_now)."""
        wanted = [m for m in dict.fromkeys(model_ids) if m in self.store.catalog]
        with self._specs_lock:
            self._preloading += 1
        try:
            if AUTO_PROBE and self._gpu_provider() is not None:
                self._forget_unjudged(wanted)
            mark("preload started")
            self.prebuild_rewrites(wanted)
            self._preload(wanted, parallel)
        finally:
            with self._specs_lock:
                self._preloading -= 1

    def prebuild_rewrites(self, model_ids: Sequence[str]) -> None:
        """Start writing these models' missing rewrites in builder processes (app.inference.rewrites),
        so that their first loads only judge them: a job's preload, and the studio as soon as it knows
        what its preview will run. Nothing to do on a machine without a GPU provider."""
        if self._gpu_provider() is None:
            return
        wanted = [m for m in dict.fromkeys(model_ids) if m in self.store.catalog]
        self.rewrites.prebuild([p for m in wanted if (p := self._rewrite_plan(m)) is not None])

    def _preload(self, wanted: list[str], parallel: int) -> None:
        def load(model_id: str) -> None:
            try:
                with self.session(model_id):
                    pass
                mark(f"loaded {model_id}")
            except DoppelError as exc:
                log.debug("preload of %s left for later: %s", model_id, exc)

        if len(wanted) < 2:
            for model_id in wanted:
                load(model_id)
        else:
            with ThreadPoolExecutor(
                max_workers=min(parallel, len(wanted)), thread_name_prefix="preload"
            ) as pool:
                list(pool.map(load, wanted))
        for model_id in wanted:
            try:
                with self.session(model_id) as session:
                    session.capture_graphs()
            except DoppelError as exc:
                log.debug("no CUDA graphs for %s: %s", model_id, exc)
        mark("models loaded and graphs captured")

    def probe_cuda_graphs(self, model_id: str, provider: Provider = Provider.CUDA) -> ProbeResult:
        """Probe a model and remember the verdict; sessions loaded afterwards follow it."""
        spec = self.load_spec(model_id, self.precision_for(model_id))
        result = probe(spec, provider)
        if torch.cuda.is_available():  # a CPU machine has nothing to remember
            self.graphs.store(key_for(spec, provider), result)
        log.info("CUDA graphs for %s on %s: %s (%s)", model_id, provider.label, result.verdict, result.reason)
        return result

    def close(self) -> None:
        self.pool.clear()


def _report_fallback(event: FallbackEvent) -> None:
    target = event.target.label if event.target else None
    get_telemetry().fallback(event.model_id, event.source.label, target, event.reason, phase=event.phase)
