"""What `python main.py live` does once its arguments are parsed (app.cli.live_cmd): camera → swap →
virtual camera, with latency measured per frame."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from app.cli.output import say, say_json
from app.cli.swap_run import build_settings
from app.core.profiling import StageTimer
from app.inference.runtime import InferenceRuntime
from app.media.virtual_camera import VirtualCamera
from app.media.webcam import PLATFORM_INPUT_FORMAT, WebcamSource
from app.models.context import AppContext
from app.pipeline.job_state import JobState
from app.pipeline.live import LivePipeline, LiveSource, PacedVideo, live_job, virtual_camera_for
from app.pipeline.settings import SourceFace


def _camera(args: argparse.Namespace) -> LiveSource:
    if args.video is not None:
        return PacedVideo(args.video)
    size = None
    if args.size:
        width, _, height = args.size.partition("x")
        size = (int(width), int(height))
    default = "/dev/video0" if sys.platform.startswith("linux") else "0"
    return WebcamSource(
        args.camera or default,
        input_format=PLATFORM_INPUT_FORMAT if args.camera_format is None else args.camera_format,
        size=size,
        fps=args.camera_fps,
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
