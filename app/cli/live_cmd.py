"""`python main.py live -s FACE [--camera DEVICE] [--virtual-camera]`: swap a webcam in real time.

Frames go camera → tracking → swap → virtual camera (OBS, Zoom, Discord see "Doppel" as a camera), with
latency measured per frame; Ctrl+C stops. `--video FILE` plays a file in real time instead of a camera.
"""

# The arguments only: the work is in app.cli.live_run, imported when `live` runs (see app.cli.lazy).

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from app.cli.lazy import LazyHandler
from app.cli.swap_cmd import add_look_options


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
    # No default here: the platform's (app.media.webcam, which loads PyAV) is filled in by live_run.
    live.add_argument("--camera-format", help="FFmpeg input format (default by platform: v4l2, dshow, …)")
    live.add_argument("--size", metavar="WxH", help="camera resolution, e.g. 1280x720")
    live.add_argument("--camera-fps", type=float, help="camera frame rate")
    live.add_argument("--virtual-camera", action="store_true", help="send the result to a virtual camera")
    live.add_argument("--seconds", type=float, help="stop after this long (default: Ctrl+C)")
    live.add_argument("--frames", type=int, help="stop after this many frames")
    add_look_options(live)
    live.set_defaults(handler=LazyHandler("app.cli.live_run", "run_live"))
