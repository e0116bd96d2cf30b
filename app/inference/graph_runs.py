"""CUDA-graph replays for one loaded model, one graph per input shape, batches padded to fixed buckets.

A captured graph replays on fixed addresses and one shape, so each shape a model meets gets its own
graph (ORT's `gpu_graph_id` run option names it) with its own input and output buffers, bound once.
A batch axis would otherwise mint a graph per face count: batches are padded up to the next bucket
(1, 2, 4, 8, up to the settings' max_graph_batch; the padding repeats the last item, so it is real data
and never NaN-prone zeros) and the outputs cut back, so a face count that changes mid-video lands on a
graph captured for its bucket. A batch past the last bucket replays in pieces of it. Shapes past
MAX_GRAPHS distinct ones, and models with an unbatched output, run those without a graph (id -1):
slower, never wrong. One run at a time per model: the buffers are shared.

Capture happens only while nothing else uses the GPU. ORT captures in CUDA's global mode, so another
thread's allocation or synchronisation during a capture fails both (measured on the H200: a torch
kernel of the pipeline and a cuDNN call in ORT, "operation not permitted when stream is capturing").
So graphs are captured only when asked (`capture_all`: each batch bucket, or the one shape of a model
without a batch axis), which the runtime does in `preload`, before a job's threads start, under
GPU_SETUP, the process-wide lock that CUDA set-up (loads, gates, probes, warm-ups) holds too. A shape
without a graph, or a model loaded later (a pool reload mid-job), runs without one: slower, never a
capture beside running work.

ORT keeps a session's CUDA graphs per calling thread (the CUDA provider's per-thread context holds
them and their run counts), so a graph captured in preload does not exist for a worker thread: its
second call would capture again, mid-job, beside the other workers' kernels. Every capture and
replay of a model therefore runs on one thread of its own (`_GraphThread`). Callers queue the copies
of their inputs in and of the outputs out on the model's stream around the replay, so the host waits
only for the replay to be queued (app.inference.streams).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from app.inference.binding import bind_input, bind_output
from app.inference.errors import ModelInputError

if TYPE_CHECKING:
    from app.inference.loaded_model import LoadedModel, Tensors

# Held by CUDA set-up (app.inference.runtime: loads, gates, probes, warm-ups) and graph captures: a
# capture never overlaps another thread's CUDA set-up. Re-entrant: a probe captures inside a load.
GPU_SETUP = threading.RLock()

BATCH_BUCKETS = (1, 2, 4, 8)
MAX_GRAPHS = 8  # distinct shapes per model; each holds its own buffers and graph memory
CAPTURE_RUNS = 3  # ORT: one ordinary run per graph id, then the capture, then a replay
SKIP_GRAPH = -1  # ORT: run this call without capturing or replaying


def bucket_for(batch: int, buckets: tuple[int, ...] = BATCH_BUCKETS) -> int | None:
    """The bucket a batch is padded to; None past the largest."""
    return next((b for b in buckets if b >= batch), None)


def buckets_up_to(largest: int) -> tuple[int, ...]:
    """The batch buckets graphs are captured for, up to `largest` (the settings' max_graph_batch)."""
    return tuple(b for b in BATCH_BUCKETS if b <= largest) or BATCH_BUCKETS[:1]


@dataclass
class _Graph:
    graph_id: int
    binding: Any
    run_options: Any
    inputs: dict[str, torch.Tensor]
    outputs: dict[str, torch.Tensor]


class _GraphThread:
    """The one thread that captures and replays a model's graphs (ORT keeps them per thread).
    Callers hold the runner's lock while they wait, so at most one call is ever queued."""

    def __init__(self, name: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"graphs-{name}")

    def call(self, function: Callable[..., Any], *args: Any) -> Any:
        return self._executor.submit(function, *args).result()

    def ident(self) -> int:
        return int(self.call(threading.get_ident))

    def close(self) -> None:
        self._executor.shutdown(wait=True)


class GraphRunner:
    def __init__(self, model: LoadedModel) -> None:
        self.model = model
        self._lock = threading.Lock()
        self._thread = _GraphThread(model.model.id)
        self._graphs: dict[tuple[tuple[int, ...], ...], _Graph] = {}
        self._skip = model.run_options(SKIP_GRAPH)
        self.buckets = buckets_up_to(model.spec.settings.max_graph_batch)
        # The batch symbol: the leading axis every batched input shares ("batch", "N", ...).
        leading = [m.shape[0] for m in model.inputs if m.shape and isinstance(m.shape[0], str)]
        self.batch_symbol = leading[0] if leading else None
        # A batch past the largest bucket replays in bucket-sized pieces when every output is batched.
        self._splittable = self.batch_symbol is not None and all(
            m.shape and m.shape[0] == self.batch_symbol for m in model.outputs
        )

    @property
    def replay_thread(self) -> int:
        """The thread every capture and replay of this model runs on (tests)."""
        return self._thread.ident()

    def close(self) -> None:
        """Stop the replay thread (its ORT per-thread context, graphs included, retires with it)."""
        with self._lock:
            self._graphs.clear()
            self._thread.close()

    @property
    def graph_ids(self) -> dict[tuple[tuple[int, ...], ...], int]:
        """Shapes seen so far and the graph each one replays (tests, reports)."""
        return {shape: graph.graph_id for shape, graph in self._graphs.items()}

    def capture_all(self, example: Tensors) -> None:
        """Capture every graph this model will replay: each bucket of `example`'s batch."""
        with GPU_SETUP:
            if self.batch_symbol is None:
                self._capture(example)
            else:
                one = {
                    name: tensor[:1] if self._batched_input(name) else tensor
                    for name, tensor in example.items()
                }
                for bucket in self.buckets:
                    self._capture(self._pad(one, bucket) if bucket > 1 else one)

    def _capture(self, tensors: Tensors) -> None:
        # ORT runs a new graph id once as an ordinary run (its allocations) and captures on the next
        # one: both here, so that no capture is left for the pipeline's first frames.
        for _ in range(CAPTURE_RUNS):
            self.run(tensors, None, capture=True)

    def _batched_input(self, name: str) -> bool:
        return any(m.name == name and m.shape and m.shape[0] == self.batch_symbol for m in self.model.inputs)

    def run(self, tensors: Tensors, out: Mapping[str, torch.Tensor] | None, capture: bool = False) -> Tensors:
        """Replay the graph of this shape's bucket; `capture` (capture_all only) captures a missing one."""
        batch = self._batch_of(tensors)
        bucket = bucket_for(batch, self.buckets) if batch is not None else None
        if batch is not None and bucket is None:
            if self._splittable and out is None and not capture:
                return self._in_pieces(tensors, batch)
            return self.model.run_plain(tensors, out, self._skip)
        padded = self._pad(tensors, bucket) if bucket is not None and bucket != batch else tensors
        key = tuple(tuple(padded[m.name].shape) for m in self.model.inputs)
        with self._lock:
            graph = self._graphs.get(key)
            if graph is None:
                if not capture or len(self._graphs) >= MAX_GRAPHS:
                    return self.model.run_plain(tensors, out, self._skip)
                graph = self._graphs[key] = self._create(padded, len(self._graphs) + 1)
            return self._replay(graph, padded, batch)

    def _in_pieces(self, tensors: Tensors, batch: int) -> Tensors:
        """A batch past the largest bucket as replays of that bucket (the last piece padded), joined."""
        step = self.buckets[-1]
        pieces = [
            self.run({name: self._piece(name, tensor, first, step) for name, tensor in tensors.items()}, None)
            for first in range(0, batch, step)
        ]
        return {m.name: torch.cat([piece[m.name] for piece in pieces]) for m in self.model.outputs}

    def _piece(self, name: str, tensor: torch.Tensor, first: int, step: int) -> torch.Tensor:
        return tensor[first : first + step] if self._batched_input(name) else tensor

    def _replay(self, graph: _Graph, padded: Tensors, batch: int | None) -> Tensors:
        """Inputs into the graph's buffers, the replay, the outputs out of them. On a model stream of
        ours all three are queued on it in order, so the next caller's copies never overwrite buffers
        a queued replay still reads (app.inference.streams); else the host waits for each step."""
        model, stream = self.model, self.model.stream
        if stream is None:
            for name, tensor in padded.items():
                graph.inputs[name].copy_(tensor)
            model.synchronise()  # the caller's stream, before the graph thread runs
            self._thread.call(model.ort_session.run_with_iobinding, graph.binding, graph.run_options)
            return {m.name: self._cut(m.shape, graph.outputs[m.name], batch) for m in model.outputs}
        caller = stream.enter(padded.values())
        with torch.cuda.stream(stream.stream):
            for name, tensor in padded.items():
                graph.inputs[name].copy_(tensor)
        self._thread.call(model.ort_session.run_with_iobinding, graph.binding, graph.run_options)
        with torch.cuda.stream(stream.stream):
            results = {m.name: self._cut(m.shape, graph.outputs[m.name], batch) for m in model.outputs}
        stream.leave(caller, results.values())
        return results

    def _batch_of(self, tensors: Tensors) -> int | None:
        if self.batch_symbol is None:
            return None
        for meta in self.model.inputs:
            if meta.shape and meta.shape[0] == self.batch_symbol:
                return int(tensors[meta.name].shape[0])
        return None

    def _pad(self, tensors: Tensors, bucket: int) -> Tensors:
        padded = {}
        for meta in self.model.inputs:
            tensor = tensors[meta.name]
            if meta.shape and meta.shape[0] == self.batch_symbol:
                extra = tensor[-1:].expand(bucket - tensor.shape[0], *tensor.shape[1:])
                tensor = torch.cat([tensor, extra])
            padded[meta.name] = tensor
        return padded

    def _cut(self, declared: tuple[Any, ...], value: torch.Tensor, batch: int | None) -> torch.Tensor:
        if batch is not None and declared and declared[0] == self.batch_symbol:
            value = value[:batch]
        return value.clone()  # the buffer is overwritten by the next replay

    def _create(self, tensors: Tensors, graph_id: int) -> _Graph:
        model = self.model
        shapes = model.output_shapes(tensors)
        unknown = [name for name, shape in shapes.items() if shape is None]
        if unknown:
            raise ModelInputError(
                f"{model.model.id}: CUDA graphs need outputs of known size; {unknown} depend on the data"
            )
        binding = model.ort_session.io_binding()
        inputs = {name: tensor.clone() for name, tensor in tensors.items()}
        outputs: dict[str, torch.Tensor] = {}
        for meta in model.inputs:
            bind_input(binding, meta.name, inputs[meta.name], meta.ort_type)
        for meta in model.all_outputs:
            shape = shapes[meta.name]
            assert shape is not None
            outputs[meta.name] = torch.empty(shape, dtype=meta.dtype, device=model.device.torch_device)
            bind_output(binding, meta.name, outputs[meta.name], meta.ort_type)
        return _Graph(graph_id, binding, model.run_options(graph_id), inputs, outputs)
