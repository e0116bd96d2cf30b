"""`python main.py live -s FACE [--camera DEVICE] [--virtual-camera]`: swap a webcam in real time.

Frames go camera → tracking → swap → virtual camera (OBS, Zoom, Discord see "Doppel" as a camera), with
latency measured per frame; Ctrl+C stops. `--video FILE` plays a file in real time instead of a camera.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from app.cli.output import say, say_json
from app.cli.swap_cmd import add_look_options, build_settings
from app.core.profiling import StageTimer
from app.inference.runtime import InferenceRuntime
from app.media.virtual_camera import VirtualCamera
from app.media.webcam import PLATFORM_INPUT_FORMAT, WebcamSource
from app.models.context import AppContext
from app.pipeline.job_state import JobState
from app.pipeline.live import LivePipeline, LiveSource, PacedVideo, live_job, virtual_camera_for
from app.pipeline.settings import SourceFace


def add_parser(subparsers: Any, common: argparse.ArgumentParser) -> None:
    live = subparsers.add_parser(
        "live", parents=[common], help="swap a webcam in real time", description=__doc__
    )
    live.add_argument(
        "-s", "--source", type=Path, nargs="+", required=True, metavar="SOURCE", help="face photo(s)"
    )
    where = live.add_mutually_exclusive_group()
    where.add_argument(
        "--camera", default=None, metavar="DEVICE", help="camera (/dev/video0, 'video=NAME' on Windows)"
    )
    where.add_argument("--video", type=Path, metavar="FILE", help="play a video file in real time instead")
    live.add_argument(
        "--camera-format", default=PLATFORM_INPUT_FORMAT, help="FFmpeg input format (v4l2, dshow, …)"
    )
    live.add_argument("--size", metavar="WxH", help="camera resolution, e.g. 1280x720")
    live.add_argument("--camera-fps", type=float, help="camera frame rate")
    live.add_argument("--virtual-camera", action="store_true", help="send the result to a virtual camera")
    live.add_argument("--seconds", type=float, help="stop after this long (default: Ctrl+C)")
    live.add_argument("--frames", type=int, help="stop after this many frames")
    add_look_options(live)
    live.set_defaults(handler=run_live)


def _camera(args: argparse.Namespace) -> LiveSource:
    if args.video is not None:
        return PacedVideo(args.video)
    size = None
    if args.size:
        width, _, height = args.size.partition("x")
        size = (int(width), int(height))
    default = "/dev/video0" if sys.platform.startswith("linux") else "0"
    return WebcamSource(
        args.camera or default, input_format=args.camera_format, size=size, fps=args.camera_fps
    )


def run_live(args: argparse.Namespace, ctx: AppContext) -> int:
    runtime = InferenceRuntime(ctx.store, ctx.settings.inference)
    camera: LiveSource | None = None
    virtual: VirtualCamera | None = None
    try:
        settings, notes = build_settings(args, runtime)
        camera = _camera(args)
        sinks = []
        if args.virtual_camera:
            virtual = virtual_camera_for(camera)
            sinks.append(lambda frame, captured, camera=virtual: camera.send(frame))
        timer = StageTimer()
        state = JobState(runtime, live_job(SourceFace(files=tuple(args.source)), settings), timer)
        pipeline = LivePipeline(state.analyser, state.swapper, camera, sinks, state.device, timer)
        try:
            report = pipeline.run(frames=args.frames, seconds=args.seconds)
        except KeyboardInterrupt:
            report = pipeline.stop()
    finally:
        if camera is not None:
            camera.close()
        if virtual is not None:
            virtual.close()
        runtime.close()
    p50 = float(np.percentile(report.latency_ms, 50)) if report.latency_ms else None
    p99 = float(np.percentile(report.latency_ms, 99)) if report.latency_ms else None
    summary = {
        "frames": report.frames,
        "fps": round(report.fps, 2),
        "skipped": report.skipped,
        "latency_p50_ms": p50,
        "latency_p99_ms": p99,
        "notes": notes,
    }
    if args.json:
        say_json(summary)
    else:
        say(
            f"{report.frames} frames at {report.fps:.1f} fps, {report.skipped} skipped; "
            f"latency p50 {p50 or 0:.1f} ms, p99 {p99 or 0:.1f} ms"
        )
    return 0
