"""One model loaded on one provider: an ORT InferenceSession run through I/O binding on torch tensors.

This is the only code that binds tensors, for every model: names come from the catalog (a name the
catalog does not know is taken from the model file by position, once, at load, and logged), inputs are
checked against the model and cast or moved when needed, and outputs come back in a dict by name.
"""

from __future__ import annotations

import logging
import re
import threading
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
from app.inference.options import EngineKey, engine_cache_dir, provider_options, session_options
from app.inference.ort import onnxruntime
from app.inference.providers import Precision, Provider
from app.inference.shapes import warmup_shape
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
        options = self._provider_options(ort_name)
        try:
            spec.faults.check(provider, "load", self.model.id)  # where a real load failure surfaces
            self._session = onnxruntime.InferenceSession(
                str(self.model.path),
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
        self.cuda_graph = provider in spec.cuda_graph_providers and self.device.kind == "cuda"
        self._graph: _GraphBuffers | None = None
        self._graph_lock = threading.Lock()
        self._noted: set[str] = set()

    def _provider_options(self, ort_name: str) -> dict[str, Any]:
        backend = next((p for p in Provider if p.ort_name == ort_name), Provider.CPU)
        engine_dir = None
        if backend is Provider.TENSORRT:
            key = EngineKey(
                self.model.sha256,
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
        )

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
        self._graph = None
        self._session = None  # ORT frees the session's memory (its CUDA arena too) with the object

    # -- running ---------------------------------------------------------------------------------

    def run(
        self, feeds: Mapping[str, torch.Tensor], out: Mapping[str, torch.Tensor] | None = None
    ) -> Tensors:
        tensors = self._prepare(feeds)
        self.spec.faults.check(self.provider, "run", self.model.id)
        if self.cuda_graph:
            return self._run_graphed(tensors)
        binding = self._session.io_binding()
        for meta in self.inputs:
            bind_input(binding, meta.name, tensors[meta.name], meta.ort_type)
        shapes = self._output_shapes(tensors)
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
        self._synchronise_inputs()
        self._session.run_with_iobinding(binding)
        if pending:
            values = binding.get_outputs()  # every bound output, in binding order
            for meta, value in zip([*self.outputs, *self._scratch], values, strict=True):
                if meta in pending:
                    results[meta.name] = to_torch(value, meta.ort_type, self.device)
        return {m.name: results[m.name] for m in self.outputs}

    def _synchronise_inputs(self) -> None:
        """ORT runs on its own CUDA stream: the caller's kernels that produce the inputs must be done.
        (ORT synchronises its stream before returning, so outputs are ready when run returns.)"""
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

    def _output_shapes(self, tensors: Tensors) -> dict[str, tuple[int, ...] | None]:
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

    # -- CUDA graphs -----------------------------------------------------------------------------

    def _run_graphed(self, tensors: Tensors) -> Tensors:
        """A captured graph replays on fixed addresses: inputs are copied into buffers bound once,
        outputs are read from buffers bound once. One run at a time per session."""
        with self._graph_lock:
            graph = self._graph
            if graph is None:
                graph = self._graph = _GraphBuffers.create(self, tensors)
            graph.load(self.model.id, tensors)
            self._synchronise_inputs()
            self._session.run_with_iobinding(graph.binding)
            return {m.name: graph.outputs[m.name].clone() for m in self.outputs}


def _is_expression(dim: Dim) -> bool:
    return isinstance(dim, str) and re.search(r"[*/+\-]", dim) is not None


@dataclass
class _GraphBuffers:
    binding: Any
    inputs: Tensors
    outputs: Tensors

    @classmethod
    def create(cls, model: LoadedModel, tensors: Tensors) -> _GraphBuffers:
        shapes = model._output_shapes(tensors)
        unknown = [name for name, shape in shapes.items() if shape is None]
        if unknown:
            raise ModelInputError(
                f"{model.model.id}: CUDA graphs need outputs of known size; {unknown} depend on the data"
            )
        binding = model._session.io_binding()
        inputs = {name: tensor.clone() for name, tensor in tensors.items()}
        outputs: Tensors = {}
        for meta in model.inputs:
            bind_input(binding, meta.name, inputs[meta.name], meta.ort_type)
        for meta in [*model.outputs, *model._scratch]:
            shape = shapes[meta.name]
            assert shape is not None
            outputs[meta.name] = torch.empty(shape, dtype=meta.dtype, device=model.device.torch_device)
            bind_output(binding, meta.name, outputs[meta.name], meta.ort_type)
        return cls(binding, inputs, outputs)

    def load(self, model_id: str, tensors: Tensors) -> None:
        for name, tensor in tensors.items():
            static = self.inputs[name]
            if static.shape != tensor.shape:
                raise ModelInputError(
                    f"{model_id}: a CUDA-graph session runs one shape; '{name}' was "
                    f"{tuple(static.shape)}, now {tuple(tensor.shape)}"
                )
            static.copy_(tensor)
