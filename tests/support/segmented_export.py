"""A resumable export as a pipeline would run it, for tests that kill it: read a clip, seek to the
writer's resume point, restore the state saved with the last segment, write changed frames, finish.

Run as `python -m tests.support.segmented_export CLIP OUTPUT [--sleep S] [--jobs J]`; it prints
"ready N" (N: the resume point) once the writer is open, "wrote I" after each frame it hands over, and
"done" after finishing, so a test can kill it near a frame of its choosing. With
DOPPEL_TEST_DIE_IN_JOIN=K in the environment it SIGKILLs itself after joining K segments: a kill in
the middle of `finish()`. Segments encode with THREADS x264 threads each, however many encode at once
(`jobs`), so every run writes the same bytes.

Frames depend on state carried from frame to frame (as a tracker's would): a running checksum of the
source frames decides where a block is inverted, so a resume that restored the wrong state, or seeked
to the wrong frame, writes different frames.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

import torch

from app.media.labels import SyntheticLabel
from app.media.segments import SegmentedVideoWriter
from app.media.video import open_video

LABEL = SyntheticLabel(models=("inswapper_128",), created="2024-01-01T00:00:00+00:00")
SEGMENT_FRAMES = 10
FINGERPRINT = "clip+invert-v1"
THREADS = 2
DIE_IN_JOIN = "DOPPEL_TEST_DIE_IN_JOIN"
_BLOCK = 48
_MODULUS = 1_000_003


def change(image: torch.Tensor, state: int) -> tuple[torch.Tensor, int]:
    """The frame with a block inverted where the state says, and the state after this frame."""
    state = (state * 31 + int(image[::8, ::8].sum())) % _MODULUS
    height, width = image.shape[:2]
    top, left = state % (height - _BLOCK), (state // 7) % (width - _BLOCK)
    out = image.clone()
    out[top : top + _BLOCK, left : left + _BLOCK] = 255 - out[top : top + _BLOCK, left : left + _BLOCK]
    return out, state


def open_writer(
    clip: Path, output: Path, fingerprint: str = FINGERPRINT, jobs: int | None = None
) -> SegmentedVideoWriter:
    with open_video(clip) as video:
        size, fps, time_base = (video.width, video.height), video.fps, video.time_base
    return SegmentedVideoWriter(
        output,
        *size,
        fps,
        time_base,
        audio_from=clip,
        label=LABEL,
        hardware=False,
        fingerprint=fingerprint,
        segment_frames=SEGMENT_FRAMES,
        jobs=jobs,
        threads=THREADS,
    )


def export(
    clip: Path,
    output: Path,
    *,
    sleep_s: float = 0.0,
    stop_after: int | None = None,
    fingerprint: str = FINGERPRINT,
    announce: bool = False,
    jobs: int | None = None,
) -> SegmentedVideoWriter:
    """Resume (or start) the export; `stop_after` frames written in this run, it aborts instead of
    finishing, as a cancelled job would."""
    writer = open_writer(clip, output, fingerprint, jobs)
    start = writer.resume_point()
    saved = writer.resume_state()
    state = int(saved.decode()) if saved else 0
    if announce:
        sys.stdout.write(f"ready {start}\n")
        sys.stdout.flush()
    with open_video(clip) as video:
        if start:
            video.seek(start)
        for count, frame in enumerate(video.frames()):
            if stop_after is not None and count == stop_after:
                writer.abort()
                return writer
            image, state = change(frame.image, state)
            writer.write(image, frame.pts, state=str(state).encode())
            if announce:
                sys.stdout.write(f"wrote {frame.index}\n")
                sys.stdout.flush()
            time.sleep(sleep_s)
    writer.finish(progress=_die_in_join)
    return writer


def _die_in_join(joined: int, total: int) -> None:
    if os.environ.get(DIE_IN_JOIN) == str(joined):
        os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("clip", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--sleep", type=float, default=0.0, help="seconds to wait after each frame")
    parser.add_argument("--jobs", type=int, help="segments encoded at once (default: the writer's)")
    args = parser.parse_args()
    export(args.clip, args.output, sleep_s=args.sleep, announce=True, jobs=args.jobs)
    sys.stdout.write("done\n")


if __name__ == "__main__":
    main()
