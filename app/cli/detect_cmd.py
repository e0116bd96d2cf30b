"""`python main.py detect IMAGE`: find faces and print or draw them."""

# The arguments only: the work is in app.cli.detect_run, imported when `detect` runs (see app.cli.lazy).

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from app.cli.lazy import LazyHandler


def _rotation(value: str) -> str | float:
    if value in ("off", "auto"):
        return value
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{value}' is not off, auto or an angle in degrees") from None


def add_parser(subparsers: Any, common: argparse.ArgumentParser) -> None:
    detect = subparsers.add_parser("detect", parents=[common], help="find faces in an image")
    detect.add_argument("image", type=Path, metavar="IMAGE")
    detect.add_argument("--detector", metavar="ID", help="detector model (default: the catalog's default)")
    detect.add_argument("--score", type=float, default=0.5, help="minimum detection score (0.5)")
    detect.add_argument("--nms", type=float, default=0.4, help="NMS IoU threshold (0.4; higher keeps more)")
    detect.add_argument("--max-faces", type=int, default=0, metavar="N", help="keep the N best (0: all)")
    detect.add_argument("--min-size", type=float, default=0.0, metavar="PX", help="smallest face side")
    detect.add_argument("--size", type=int, default=640, help="detection size for models of any size (640)")
    detect.add_argument(
        "--rotation", type=_rotation, default="off", metavar="off|auto|DEG", help="find rotated faces too"
    )
    detect.add_argument(
        "--landmarks", metavar="ID|auto", help="dense landmarks: a landmarker id, or auto (by face size)"
    )
    detect.add_argument(
        "--landmark-confidence",
        type=float,
        default=0.5,
        metavar="C",
        help="auto mode tries the next landmarker below this confidence (0.5)",
    )
    detect.add_argument("--recogniser", metavar="ID", help="also embed each face with this recogniser")
    detect.add_argument("--draw", type=Path, metavar="OUT.png", help="write the image with the faces drawn")
    detect.set_defaults(handler=LazyHandler("app.cli.detect_run", "detect_faces"))
