"""A model's own CUDA stream, and the hand-offs that order its ONNX Runtime work between the caller's.

ORT's CUDA provider runs a session's kernels on one stream, and by default it synchronises that stream
before a run returns; callers then had to synchronise their own stream before each run too, so its
inputs were ready. Each model call stopped the host twice until the GPU drained: on the H200 bench
the export's workers spent most of their time waiting there, with the GPU a third busy.

Here the session's stream is one torch made (ORT's `user_compute_stream`), runs skip ORT's closing
synchronisation (`disable_synchronize_execution_providers`; measured on the H200 with ORT 1.31: a
plain run returns after launching, a CUDA-graph replay 0.05 ms after it is queued), and the order is
kept on the GPU instead: the model's stream waits for the caller's work so far, the caller's stream
waits for the model's. The host never waits. Memory is kept from early reuse the way torch's caching
allocator expects: every tensor one stream made and the other uses is `record_stream`ed, so its block
is not handed out again until the other stream's queued work on it is done.

Analysis (detection, landmarks, recognition) is the pipeline's one sequential stage, and each of its
batches waits for its own results on the host before the next can start, while the swap workers keep
the GPU full of long swapper and restorer kernels. Its streams (the models' and the analysing thread's)
therefore run at high priority: the GPU schedules their blocks first, so the stage that gates every
later frame is not queued behind work that could wait.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext

import torch

from app.models.choices import Kind

# ORT run option: return once the run is queued; the caller orders what follows on the GPU.
NO_SYNC = "disable_synchronize_execution_providers"


HIGH_PRIORITY = -1  # CUDA stream priorities: lower is more urgent; 0 is every other stream's
ANALYSIS_KINDS = frozenset({Kind.DETECTOR, Kind.LANDMARKER, Kind.RECOGNISER})


def priority_for(kind: Kind) -> int:
    return HIGH_PRIORITY if kind in ANALYSIS_KINDS else 0


def on_analysis_stream(device: torch.device) -> AbstractContextManager[object]:
    """A thread that analyses frames (export's feeder, live's analysis loop) runs its GPU work inside
    this: a high-priority stream of its own on a CUDA device, nothing to change elsewhere."""
    if device.type != "cuda":
        return nullcontext()
    return torch.cuda.stream(torch.cuda.Stream(device, priority=HIGH_PRIORITY))  # type: ignore[no-untyped-call]


class ModelStream:
    """The stream a model's session computes on. `enter` before a run, `leave` after it."""

    def __init__(self, device: torch.device, priority: int = 0) -> None:
        self.device = device
        self.stream = torch.cuda.Stream(device, priority=priority)  # type: ignore[no-untyped-call]

    @property
    def handle(self) -> int:
        """The raw cudaStream_t, for ORT's `user_compute_stream` provider option."""
        return int(self.stream.cuda_stream)

    def enter(self, used_here: Iterable[torch.Tensor]) -> torch.cuda.Stream:
        """Order the model's stream after the calling stream's work so far; the caller's tensors the
        model reads or writes (inputs, bound outputs) stay allocated until it is done with them.
        Returns the caller's stream, for `leave`."""
        caller = torch.cuda.current_stream(self.device)
        self.stream.wait_stream(caller)
        for tensor in used_here:
            if tensor.is_cuda:
                tensor.record_stream(self.stream)
        return caller

    def leave(self, caller: torch.cuda.Stream, made_here: Iterable[torch.Tensor] = ()) -> None:
        """Order the caller's stream after the model's work so far; tensors made on the model's stream
        that the caller keeps (copied outputs) are not reused while the caller still needs them."""
        for tensor in made_here:
            if tensor.is_cuda:
                tensor.record_stream(caller)
        caller.wait_stream(self.stream)
