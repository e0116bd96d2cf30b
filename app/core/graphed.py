"""Fixed-shape torch work replayed from CUDA graphs: one launch instead of dozens of small ones.

Each frame goes through a few pure tensor functions whose shapes only change with the video (YUV → RGB
after decoding, RGB → I420 before encoding). Eagerly they cost a dozen to thirty kernel launches, each
holding the GIL while torch dispatches it; the frame pipeline's threads share that one GIL (py-spy on
the H200 export: the decode thread alone held it about 1 ms a frame, mostly in its colour conversion).
A `Graphed` function captures the work once per input signature and then replays it: the call costs
a copy into the graph's inputs, the replay and a copy out, whatever the function does.

Replays may come from several threads, each on its own stream. The graph's buffers are shared, so
a call waits on the GPU (not the host) for the previous call's replay to finish with them. A function
that cannot be captured (it syncs, or reads a tensor on the host) runs eagerly from then on; CPU tensors
always run eagerly, and so does everything when graphs are turned off (settings: cuda_graphs "off").
An aborted capture leaves torch's CUDA random generator marked as capturing (torch 2.11), so only
functions known to capture are wrapped (the frame path draws no random numbers on the GPU).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import torch

log = logging.getLogger(__name__)

_enabled = True


def set_enabled(on: bool) -> None:
    """Graphs on or off for the whole process (the inference settings' `cuda_graphs`)."""
    global _enabled
    _enabled = on


@dataclass
class _Capture:
    graph: torch.cuda.CUDAGraph
    inputs: tuple[torch.Tensor, ...]
    output: torch.Tensor
    free: torch.cuda.Event  # recorded after each call's copy out: the buffers may be written again


Signature = tuple[Hashable, ...]


class Graphed:
    """`function(*tensors, **options) -> tensor`, replayed from a CUDA graph per shape, dtype, device and
    options (which must be hashable); at most `max_captures` of them, further signatures run eagerly."""

    def __init__(self, function: Callable[..., torch.Tensor], name: str, max_captures: int = 4) -> None:
        self.function = function
        self.name = name
        self.max_captures = max_captures
        self._captures: dict[Signature, _Capture] = {}
        self._eager: set[Signature] = set()  # signatures that failed to capture, or over the limit
        self._lock = threading.Lock()

    @property
    def captured(self) -> int:
        return len(self._captures)

    def __call__(self, *tensors: torch.Tensor, **options: Hashable) -> torch.Tensor:
        if not (_enabled and tensors and all(t.is_cuda for t in tensors)):
            return self.function(*tensors, **options)
        signature = (
            *((tuple(t.shape), t.dtype, t.device.index) for t in tensors),
            *sorted(options.items()),
        )
        with self._lock:  # copy in, replay, copy out and the event stay in one order across threads
            capture = self._captures.get(signature)
            if capture is None and signature not in self._eager:
                capture = self._capture(signature, tensors, options)
            if capture is None:
                return self.function(*tensors, **options)
            stream = torch.cuda.current_stream(tensors[0].device)
            stream.wait_event(capture.free)
            for static, tensor in zip(capture.inputs, tensors, strict=True):
                static.copy_(tensor)
            capture.graph.replay()
            result = capture.output.clone()
            capture.free.record(stream)
        return result

    def _capture(
        self, signature: Signature, tensors: tuple[torch.Tensor, ...], options: dict[str, Hashable]
    ) -> _Capture | None:
        if len(self._captures) >= self.max_captures:
            self._eager.add(signature)
            return None
        device = tensors[0].device
        caller = torch.cuda.current_stream(device)
        inputs = tuple(torch.empty_like(t, memory_format=torch.contiguous_format) for t in tensors)
        for static, tensor in zip(inputs, tensors, strict=True):
            static.copy_(tensor)
        side = torch.cuda.Stream(device)  # type: ignore[no-untyped-call]
        side.wait_stream(caller)
        try:
            with torch.cuda.stream(side):
                self.function(*inputs, **options)  # lazy set-up happens outside the capture
            graph = torch.cuda.CUDAGraph()
            # thread_local: the pipeline's other threads keep launching while this one captures.
            with torch.cuda.graph(graph, stream=side, capture_error_mode="thread_local"):
                output = self.function(*inputs, **options)
        except (RuntimeError, TypeError, ValueError) as exc:
            log.warning("%s: not captured as a CUDA graph (%s); it runs eagerly", self.name, exc)
            caller.wait_stream(side)
            self._eager.add(signature)
            return None
        caller.wait_stream(side)
        free = torch.cuda.Event()  # type: ignore[no-untyped-call]
        free.record(caller)
        capture = _Capture(graph, inputs, output, free)
        self._captures[signature] = capture
        return capture
