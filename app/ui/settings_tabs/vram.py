"""A rough estimate of the GPU memory a video run takes, for the Execution tab. Pure: no Qt, no GPU.

It is an estimate, not a measurement: it counts the frames in flight and each model's file size with a
margin for its working memory, and leaves out what it cannot know ahead (the provider's arenas, TensorRT
engines, the decoder's own surfaces, other programs on the GPU).
"""

from __future__ import annotations

import math

MIB = 1 << 20
FRAME_CHANNELS = 3  # decoded frames are 8-bit RGB on the device
WORKING_COPIES = 4  # float32 copies of a frame a worker holds at once: frame, swapped, mask, blend
FLOAT_BYTES = 4
MODEL_OVERHEAD = 1.5  # weights in memory plus activations and workspace, per byte of model file
RUNTIME_MB = 300  # the CUDA context and the inference runtime's own allocations

RESOLUTIONS: tuple[tuple[str, int, int], ...] = (
    ("720p", 1280, 720),
    ("1080p", 1920, 1080),
    ("4K", 3840, 2160),
)


def vram_estimate_mb(width: int, height: int, queue_frames: int, workers: int, model_bytes: int) -> int:
    """Estimated GPU memory in MiB for `width`×`height` video: `queue_frames` decoded frames waiting,
    `workers` swap workers each holding a few float copies of its frame, and models of `model_bytes`
    in total (their files' sizes), plus a fixed runtime overhead."""
    if width <= 0 or height <= 0:
        raise ValueError(f"frame size must be positive, got {width}×{height}")
    if queue_frames < 0 or workers < 0 or model_bytes < 0:
        raise ValueError(
            f"queue frames, workers and model bytes must be ≥ 0, got {queue_frames}, {workers}, {model_bytes}"
        )
    frame = width * height * FRAME_CHANNELS
    queued = (queue_frames + workers) * frame  # waiting, plus the one each worker took
    working = workers * WORKING_COPIES * frame * FLOAT_BYTES
    models = model_bytes * MODEL_OVERHEAD
    return math.ceil((queued + working + models) / MIB) + RUNTIME_MB
