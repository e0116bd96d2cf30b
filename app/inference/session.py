"""A model session that survives its provider: the one object every model family runs through.

At load, each provider of the chain is tried in turn; one that fails is recorded and skipped. At run time,
an error on TensorRT or CUDA disables that provider for this model, reloads the model on the next one and
runs the same inputs again, so the caller gets a correct result rather than an exception. Outputs come
back on the caller's device whatever provider produced them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping

import torch

from app.inference.device import free_vram_bytes
from app.inference.errors import InferenceError, ModelInputError, ProviderLoadError
from app.inference.fallbacks import FallbackLog
from app.inference.loaded_model import LoadedModel, LoadSpec, ModelFile, Tensors
from app.inference.providers import Provider

log = logging.getLogger(__name__)


class DisabledProviders:
    """Providers that failed for a model in this process; its later loads skip them."""

    def __init__(self) -> None:
        self._disabled: dict[str, set[Provider]] = {}
        self._lock = threading.Lock()

    def disable(self, model_id: str, provider: Provider) -> None:
        with self._lock:
            self._disabled.setdefault(model_id, set()).add(provider)

    def of(self, model_id: str) -> set[Provider]:
        with self._lock:
            return set(self._disabled.get(model_id, ()))


class Session:
    def __init__(
        self,
        spec: LoadSpec,
        chain: list[Provider],
        fallbacks: FallbackLog,
        disabled: DisabledProviders,
    ) -> None:
        self.spec = spec
        self.chain = list(chain)
        self._fallbacks = fallbacks
        self._disabled = disabled
        self._lock = threading.Lock()
        self._closed = False
        self.footprint_bytes = 0
        self.load_ms = 0.0
        self.first_run_ms: float | None = None  # set by warmup()
        self._loaded = self._load(self.chain)

    # -- facts -----------------------------------------------------------------------------------

    @property
    def model(self) -> ModelFile:
        return self.spec.model

    @property
    def model_id(self) -> str:
        return self.spec.model.id

    @property
    def provider(self) -> Provider:
        return self._loaded.provider

    @property
    def device(self) -> torch.device:
        return self._loaded.device.torch_device

    @property
    def input_names(self) -> list[str]:
        return self._loaded.input_names

    @property
    def output_names(self) -> list[str]:
        return self._loaded.output_names

    @property
    def uses_cuda_graph(self) -> bool:
        return self._loaded.cuda_graph

    @property
    def own_stream(self) -> bool:
        """Whether the model computes on a stream of its own, ordered on the GPU (app.inference.streams)."""
        return self._loaded.stream is not None

    @property
    def closed(self) -> bool:
        return self._closed

    # -- loading ---------------------------------------------------------------------------------

    def _load(self, candidates: list[Provider]) -> LoadedModel:
        reasons: list[str] = []
        skip = self._disabled.of(self.model_id)
        usable = [p for p in candidates if p not in skip or p is Provider.CPU]
        for position, provider in enumerate(usable):
            started = time.perf_counter()
            free_before = free_vram_bytes(self.spec.settings.device_index) if provider.on_gpu else None
            try:
                loaded = LoadedModel(self.spec, provider)
            except ProviderLoadError as exc:
                reason = str(exc)
                reasons.append(f"{provider.label}: {reason}")
                following = usable[position + 1] if position + 1 < len(usable) else None
                self._disabled.disable(self.model_id, provider)
                self._fallbacks.record(self.model_id, provider, following, "load", reason)
                continue
            self.load_ms = (time.perf_counter() - started) * 1000.0
            self.footprint_bytes = self._footprint(loaded, free_before)
            log.info("%s loaded on %s in %.0f ms", self.model_id, provider.label, self.load_ms)
            return loaded
        raise InferenceError(
            f"{self.model.path}: '{self.model_id}' could not be loaded on any provider: {'; '.join(reasons)}"
        )

    def _footprint(self, loaded: LoadedModel, free_before: int | None) -> int:
        """Bytes this session holds: measured on the GPU (driver's free memory before and after),
        the weights' size on the CPU."""
        weights = self.model.path.stat().st_size
        if free_before is None or loaded.device.kind != "cuda":
            return weights
        free_after = free_vram_bytes(self.spec.settings.device_index) or free_before
        return max(weights, free_before - free_after)

    # -- running ---------------------------------------------------------------------------------

    def run(
        self, feeds: Mapping[str, torch.Tensor], out: Mapping[str, torch.Tensor] | None = None
    ) -> Tensors:
        """Run the model; inputs and outputs by name. Outputs come back on the device of the inputs;
        `out` tensors (by output name) are filled in place and returned."""
        if self._closed:
            raise InferenceError(f"'{self.model_id}': the session was closed (evicted from the pool)")
        caller_device = next(iter(feeds.values())).device if feeds else self.device
        while True:
            loaded = self._loaded
            try:
                results = loaded.run(feeds, out)
                break
            except ModelInputError:
                raise
            except Exception as exc:
                if loaded.provider is Provider.CPU:
                    raise InferenceError(f"'{self.model_id}' failed on the CPU: {exc}") from exc
                self._fall_back_from(loaded, str(exc).strip() or type(exc).__name__)
        return self._deliver(results, caller_device, out)

    def _fall_back_from(self, failed: LoadedModel, reason: str) -> None:
        """Move this session off a provider that failed at run time. Several threads may hit the same
        failure at once: the first one records it and reloads, the others just retry on the new one."""
        with self._lock:
            if self._loaded is not failed:
                return
            rest = self.chain[self.chain.index(failed.provider) + 1 :] or [Provider.CPU]
            skip = self._disabled.of(self.model_id) | {failed.provider}
            following = next((p for p in rest if p not in skip or p is Provider.CPU), Provider.CPU)
            self._disabled.disable(self.model_id, failed.provider)
            self._fallbacks.record(self.model_id, failed.provider, following, "run", reason)
            self._loaded = self._load(rest)
            failed.close()

    @staticmethod
    def _deliver(results: Tensors, device: torch.device, out: Mapping[str, torch.Tensor] | None) -> Tensors:
        delivered: Tensors = {}
        for name, tensor in results.items():
            target = out.get(name) if out else None
            if target is not None and target is not tensor:
                target.copy_(tensor)  # e.g. a CUDA buffer filled by a session now on the CPU
                delivered[name] = target
            else:
                delivered[name] = tensor if tensor.device == device else tensor.to(device)
        return delivered

    # -- warmup and lifetime -----------------------------------------------------------------------

    def example_inputs(self, seed: int = 0) -> Tensors:
        return self._loaded.example_inputs(seed)

    def warmup(self) -> float:
        """One run on example inputs; returns its milliseconds (the first run pays for lazy setup)."""
        feeds = self.example_inputs()
        started = time.perf_counter()
        self.run(feeds)
        self.finish()
        elapsed = (time.perf_counter() - started) * 1000.0
        if self.first_run_ms is None:
            self.first_run_ms = elapsed
        return elapsed

    def finish(self) -> None:
        """Wait until this thread's queued GPU work, this model's runs included, is done (timings)."""
        self._loaded.synchronise()

    def capture_graphs(self) -> None:
        """Capture the CUDA graphs this model replays (runtime.preload, before a job's threads start);
        a model whose capture fails runs without."""
        loaded = self._loaded
        try:
            loaded.capture_graphs(self.example_inputs())
        except ModelInputError:
            raise
        except RuntimeError as exc:  # ORT's failures and torch's CUDA errors both derive from it
            log.warning("%s: CUDA graph capture failed, running without graphs: %s", self.model_id, exc)
            loaded.drop_graphs()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._loaded.close()
