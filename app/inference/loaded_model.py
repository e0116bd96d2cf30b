"""One model loaded on one provider: an ORT InferenceSession run through I/O binding on torch tensors.

This is the only code that binds tensors, for every model: names come from the catalog (a name the
catalog does not know is taken from the model file by position, once, at load, and logged), inputs are
checked against the model and cast or moved when needed, and outputs come back in a dict by name.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from app.core.settings import InferenceSettings
from app.inference.binding import (
    OrtDevice,
    bind_input,
    bind_output,
    bind_output_to_device,
    to_torch,
    torch_dtype,
)
from app.inference.discovery import discover, probe_reason
from app.inference.errors import ModelFormatError, ModelInputError, ProviderLoadError
from app.inference.faults import FaultPlan
from app.inference.graph_runs import GraphRunner
from app.inference.options import EngineKey, engine_cache_dir, provider_options, session_options
from app.inference.ort import onnxruntime
from app.inference.providers import Precision, Provider
from app.inference.shapes import warmup_shape
from app.inference.streams import NO_SYNC, ModelStream, priority_for
from app.models.catalog import ModelEntry, TensorSpec

log = logging.getLogger(__name__)

Dim = int | str | None
Tensors = dict[str, torch.Tensor]

_GPU_ORT_NAMES = {Provider.CUDA.ort_name, Provider.TENSORRT.ort_name}


@dataclass(frozen=True)
class ModelFile:
    entry: ModelEntry
    path: Path
    sha256: str  # of the file on disk: a stand-in's own hash, never the real model's
    standin: bool

    @property
    def id(self) -> str:
        return self.entry.id


@dataclass(frozen=True)
class ModelVariant:
    """A rewritten copy of a model file that passed its gate (app.inference.rewrites)."""

    path: Path
    sha256: str  # of the rewritten file: engine caches and graph verdicts are keyed by it
    tag: str  # "batch", "fp16", "batch+fp16"
    precision: Precision  # what the file computes in
    batched: bool  # its leading axes are dynamic


@dataclass(frozen=True)
class LoadSpec:
    """Everything a load needs besides the provider."""

    model: ModelFile
    settings: InferenceSettings
    precision: Precision
    cuda_graph_providers: frozenset[Provider]  # where this model may replay CUDA graphs (probed)
    cache_root: Path
    sm: str | None
    tensorrt_version: str | None
    faults: FaultPlan = field(default_factory=FaultPlan)
    # Tests run a provider's sessions on another ORT provider (a CPU-backed stand-in for CUDA).
    backends: Mapping[Provider, str] = field(default_factory=dict)
    # The file each provider loads instead of the original, where a rewrite passed for it.
    variants: Mapping[Provider, ModelVariant] = field(default_factory=dict)

    def variant(self, provider: Provider) -> ModelVariant | None:
        return self.variants.get(provider)

    def path_for(self, provider: Provider) -> Path:
        variant = self.variants.get(provider)
        return variant.path if variant else self.model.path

    def sha256_for(self, provider: Provider) -> str:
        variant = self.variants.get(provider)
        return variant.sha256 if variant else self.model.sha256


@dataclass(frozen=True)
class TensorMeta:
    name: str
    ort_type: str
    shape: tuple[Dim, ...]  # as the model file declares it

    @property
    def dtype(self) -> torch.dtype:
        return torch_dtype(self.ort_type)


def _meta(arg: Any) -> TensorMeta:
    shape = tuple(
        d if isinstance(d, int) and d > 0 else (d if isinstance(d, str) else None) for d in arg.shape
    )
    return TensorMeta(arg.name, arg.type, shape)


def _resolve(
    model: ModelFile, what: str, specs: Sequence[TensorSpec], declared: list[TensorMeta]
) -> list[TensorMeta]:
    """The model file's tensors in catalog order, each found by its catalog name."""
    by_name = {m.name: m for m in declared}
    resolved = []
    for index, spec in enumerate(specs):
        if spec.name is None:
            if index >= len(declared):
                raise ModelFormatError(
                    f"{model.path}: the model has {len(declared)} {what}s, the catalog entry "
                    f"'{model.id}' expects at least {index + 1}"
                )
            meta = declared[index]
            log.info("%s: catalog names no %s %d; using the model's '%s'", model.id, what, index, meta.name)
        elif spec.name in by_name:
            meta = by_name[spec.name]
        else:
            raise ModelFormatError(
                f"{model.path}: no {what} named '{spec.name}' (the model has "
                f"{', '.join(repr(m.name) for m in declared)}); is this the file for '{model.id}'?"
            )
        resolved.append(meta)
    return resolved


class LoadedModel:
    def __init__(self, spec: LoadSpec, provider: Provider) -> None:
        self.spec = spec
        self.provider = provider
        self.model = spec.model
        ort_name = spec.backends.get(provider, provider.ort_name)
        if ort_name not in onnxruntime.get_available_providers():
            raise ProviderLoadError(f"this onnxruntime build has no {provider.label} provider")
        if ort_name == provider.ort_name:
            # Discovery already knows why a provider's libraries do not load (libnvinfer, cuDNN):
            # that reason beats ORT's generic one, and skips a slow doomed attempt.
            status = discover()[provider]
            if not status.usable:
                raise ProviderLoadError(status.reason or f"{provider.label} is not usable")
        self.device = (
            OrtDevice("cuda", spec.settings.device_index)
            if ort_name in _GPU_ORT_NAMES
            else OrtDevice("cpu", 0)
        )
        # The CUDA provider computes on a stream of ours, handed work without the host waiting
        # (app.inference.streams). TensorRT keeps ORT's own stream and synchronisation: untested here.
        self.stream = (
            ModelStream(self.device.torch_device, priority_for(self.model.entry.kind))
            if ort_name == Provider.CUDA.ort_name and spec.settings.stream_handoff
            else None
        )
        options = self._provider_options(ort_name)
        try:
            spec.faults.check(provider, "load", self.model.id)  # where a real load failure surfaces
            self._session = onnxruntime.InferenceSession(
                str(spec.path_for(provider)),
                sess_options=session_options(provider),
                providers=[(ort_name, options)],
                enable_fallback=0,
            )
        except Exception as exc:
            raise ProviderLoadError(str(exc).strip() or type(exc).__name__) from exc
        active = self._session.get_providers()
        if not active or active[0] != ort_name:
            raise ProviderLoadError(probe_reason(provider) or f"{provider.label} did not initialise")
        entry = self.model.entry
        self.inputs = _resolve(
            self.model, "input", entry.inputs, [_meta(a) for a in self._session.get_inputs()]
        )
        declared_outputs = [_meta(a) for a in self._session.get_outputs()]
        self.outputs = _resolve(self.model, "output", entry.outputs, declared_outputs)
        public = {m.name for m in self.outputs}
        # Graph outputs the catalog does not list (leaked intermediates) are bound too, then dropped.
        self._scratch = [m for m in declared_outputs if m.name not in public]
        # A test backend (CUDA run by the CPU provider) takes the graph path too: its bucketing is
        # exercised, and the CPU provider ignores the graph annotations.
        graphs_here = self.device.kind == "cuda" or ort_name != provider.ort_name
        self._graphs = GraphRunner(self) if provider in spec.cuda_graph_providers and graphs_here else None
        self._plain_options = self.run_options()
        self._noted: set[str] = set()

    def _provider_options(self, ort_name: str) -> dict[str, Any]:
        backend = next((p for p in Provider if p.ort_name == ort_name), Provider.CPU)
        engine_dir = None
        if backend is Provider.TENSORRT:
            key = EngineKey(
                self.spec.sha256_for(Provider.TENSORRT),
                self.spec.sm or "sm_unknown",
                f"trt{self.spec.tensorrt_version or 'unknown'}",
                self.spec.precision,
            )
            engine_dir = engine_cache_dir(self.spec.cache_root, key)
        return provider_options(
            backend,
            self.model.entry,
            self.spec.settings,
            precision=self.spec.precision,
            cuda_graph=backend in self.spec.cuda_graph_providers,
            engine_dir=engine_dir,
            stream=self.stream.handle if self.stream is not None else None,
        )

    def run_options(self, graph_id: int | None = None) -> Any:
        """ORT run options for this model: the CUDA graph to replay (None: ORT's default), and on its own
        stream no synchronisation before returning."""
        options = onnxruntime.RunOptions()
        if graph_id is not None:
            options.add_run_config_entry("gpu_graph_id", str(graph_id))
        if self.stream is not None:
            options.add_run_config_entry(NO_SYNC, "1")
        return options

    @property
    def input_names(self) -> list[str]:
        return [m.name for m in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [m.name for m in self.outputs]

    def example_inputs(self, seed: int = 0) -> Tensors:
        """Tensors of the right names, shapes and dtypes on this model's device (warmup, probes)."""
        generator = torch.Generator().manual_seed(seed)
        feeds: Tensors = {}
        entry = self.model.entry
        for spec, meta in zip(entry.inputs, self.inputs, strict=True):
            shape = warmup_shape(entry, spec)
            if meta.dtype.is_floating_point:
                values = torch.rand(shape, generator=generator).to(meta.dtype)
            elif meta.dtype == torch.bool:
                values = torch.zeros(shape, dtype=torch.bool)
            else:
                values = torch.randint(0, 2, shape, generator=generator, dtype=meta.dtype)
            feeds[meta.name] = values.to(self.device.torch_device)
        return feeds

    def close(self) -> None:
        self.drop_graphs()
        self._session = None  # ORT frees the session's memory (its CUDA arena too) with the object

    # -- running ---------------------------------------------------------------------------------

    def run(
        self, feeds: Mapping[str, torch.Tensor], out: Mapping[str, torch.Tensor] | None = None
    ) -> Tensors:
        tensors = self._prepare(feeds)
        self.spec.faults.check(self.provider, "run", self.model.id)
        if self._graphs is not None:
            return self._graphs.run(tensors, out)
        return self.run_plain(tensors, out, self._plain_options)

    @property
    def cuda_graph(self) -> bool:
        return self._graphs is not None

    def capture_graphs(self, example: Tensors) -> None:
        """Capture every CUDA graph this model will replay now, at warm-up (app.inference.graph_runs)."""
        if self._graphs is not None:
            self._graphs.capture_all(self._prepare(example))

    def drop_graphs(self) -> None:
        graphs, self._graphs = self._graphs, None
        if graphs is not None:
            graphs.close()

    def synchronise(self) -> None:
        """Wait on the host until the calling stream's queued work is done. Timings use it (a run of
        this model is on that stream's order); so do runs without a stream of ours (TensorRT), where
        ORT computes on its own stream and the kernels making the inputs must be done first (ORT
        synchronises its stream before returning, so outputs are ready when run returns)."""
        if self.device.kind == "cuda":
            torch.cuda.current_stream(self.device.torch_device).synchronize()

    def _note_once(self, key: str, message: str, *args: object) -> None:
        if key not in self._noted:
            self._noted.add(key)
            log.info(message, *args)

    def _prepare(self, feeds: Mapping[str, torch.Tensor]) -> Tensors:
        expected = self.input_names
        missing = [n for n in expected if n not in feeds]
        unknown = [n for n in feeds if n not in expected]
        if missing or unknown:
            raise ModelInputError(
                f"{self.model.id}: inputs must be {expected}; missing {missing}, unexpected {unknown}"
            )
        prepared: Tensors = {}
        for meta in self.inputs:
            tensor = feeds[meta.name]
            self._check_shape(meta, tuple(tensor.shape))
            if tensor.dtype != meta.dtype:
                self._note_once(
                    f"cast:{meta.name}", "%s: casting '%s' to %s", self.model.id, meta.name, meta.dtype
                )
                tensor = tensor.to(meta.dtype)
            if tensor.device != self.device.torch_device:
                self._note_once(
                    f"move:{meta.name}",
                    "%s: moving '%s' from %s to %s",
                    self.model.id,
                    meta.name,
                    tensor.device,
                    self.device.torch_device,
                )
                tensor = tensor.to(self.device.torch_device)
            prepared[meta.name] = tensor.contiguous()
        return prepared

    def _check_shape(self, meta: TensorMeta, shape: tuple[int, ...]) -> None:
        fits = len(shape) == len(meta.shape) and all(
            not isinstance(want, int) or want == got for want, got in zip(meta.shape, shape, strict=True)
        )
        if not fits:
            wanted = "x".join("?" if not isinstance(d, int) else str(d) for d in meta.shape)
            got = "x".join(str(d) for d in shape)
            raise ModelInputError(f"{self.model.id}: input '{meta.name}' must be {wanted}, got {got}")

    def output_shapes(self, tensors: Tensors) -> dict[str, tuple[int, ...] | None]:
        """Output shapes known before the run: fixed dims, and named dims that an input also has."""
        symbols: dict[str, int] = {}
        for meta in self.inputs:
            for dim, size in zip(meta.shape, tensors[meta.name].shape, strict=True):
                if isinstance(dim, str):
                    symbols.setdefault(dim, int(size))
        shapes: dict[str, tuple[int, ...] | None] = {}
        for meta in [*self.outputs, *self._scratch]:
            dims = [
                d if isinstance(d, int) else symbols.get(d) if isinstance(d, str) else None
                for d in meta.shape
            ]
            known = all(isinstance(d, int) for d in dims) and not any(_is_expression(d) for d in meta.shape)
            shapes[meta.name] = tuple(int(d) for d in dims if d is not None) if known else None
        return shapes

    def _output_buffer(
        self, meta: TensorMeta, shape: tuple[int, ...] | None, out: Mapping[str, torch.Tensor] | None
    ) -> torch.Tensor | None:
        given = out.get(meta.name) if out else None
        if (
            given is not None
            and shape is not None
            and tuple(given.shape) == shape
            and given.dtype == meta.dtype
            and given.device == self.device.torch_device
            and given.is_contiguous()
        ):
            return given  # the caller's buffer, reused: ORT writes straight into it
        if shape is None:
            return None
        return torch.empty(shape, dtype=meta.dtype, device=self.device.torch_device)

    def run_plain(
        self, tensors: Tensors, out: Mapping[str, torch.Tensor] | None, run_options: Any
    ) -> Tensors:
        """One ordinary run of prepared inputs (a graph session passes options that skip its graphs)."""
        binding = self._session.io_binding()
        for meta in self.inputs:
            bind_input(binding, meta.name, tensors[meta.name], meta.ort_type)
        shapes = self.output_shapes(tensors)
        results: Tensors = {}
        pending: list[TensorMeta] = []
        for meta in [*self.outputs, *self._scratch]:
            target = self._output_buffer(meta, shapes.get(meta.name), out)
            if target is None:
                bind_output_to_device(binding, meta.name, self.device)
                pending.append(meta)
            else:
                bind_output(binding, meta.name, target, meta.ort_type)
                results[meta.name] = target
        stream = self.stream
        if stream is None:
            self.synchronise()
            self._session.run_with_iobinding(binding, run_options)
            results.update(self._take_pending(binding, pending))
        else:
            caller = stream.enter([*tensors.values(), *results.values()])
            self._session.run_with_iobinding(binding, run_options)
            with torch.cuda.stream(stream.stream):  # before ORT's next run on it reuses their memory
                taken = self._take_pending(binding, pending)
            stream.leave(caller, taken.values())
            results.update(taken)
        return {m.name: results[m.name] for m in self.outputs}

    def _take_pending(self, binding: Any, pending: list[TensorMeta]) -> Tensors:
        """Outputs ORT allocated (their size depends on the data), copied into torch tensors."""
        if not pending:
            return {}
        values = binding.get_outputs()  # every bound output, in binding order
        return {
            meta.name: to_torch(value, meta.ort_type, self.device)
            for meta, value in zip([*self.outputs, *self._scratch], values, strict=True)
            if meta in pending
        }

    @property
    def ort_session(self) -> Any:
        return self._session

    @property
    def all_outputs(self) -> list[TensorMeta]:
        """The public outputs, then the scratch ones (bound too, then dropped)."""
        return [*self.outputs, *self._scratch]


def _is_expression(dim: Dim) -> bool:
    return isinstance(dim, str) and re.search(r"[*/+\-]", dim) is not None
