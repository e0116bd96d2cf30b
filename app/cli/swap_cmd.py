"""`python main.py swap -s SOURCE … -t TARGET -o OUTPUT`: swap faces in an image or a video."""

# The arguments only: the work is in app.cli.swap_run, imported when a swap runs (see app.cli.lazy).

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from app.cli.lazy import LazyHandler
from app.faces.choices import Combine
from app.inference.providers import HINTS
from app.media.choices import X264_PRESETS
from app.pipeline.choices import Preset
from app.processing.choices import FACE_REGIONS, PARSER_CLASSES, WATERMARK_TEXT
from app.tracking.choices import StabiliserLevel

MASK_PARTS = ("box", "occluder", "xseg", "parser")


def add_parser(subparsers: Any, common: argparse.ArgumentParser) -> None:
    swap = subparsers.add_parser(
        "swap", parents=[common], help="swap faces in an image or a video", description=__doc__
    )
    io = swap.add_argument_group("input and output")
    io.add_argument(
        "-s",
        "--source",
        type=Path,
        nargs="+",
        required=True,
        metavar="SOURCE",
        help="photo(s) of the face to paste, and/or identity files saved by the studio (.json); "
        "several are combined into one person",
    )
    io.add_argument(
        "--combine",
        choices=[c.value for c in Combine],
        help="how several sources combine: mean, or median (resists one odd photo); default: a lone "
        "identity file's own choice, else mean",
    )
    io.add_argument("-t", "--target", type=Path, required=True, metavar="TARGET", help="image or video")
    io.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        metavar="OUTPUT",
        help="image (.png .jpg .webp .tif) or video (.mp4 .mov .mkv) to write",
    )
    add_look_options(swap)
    engine = swap.add_argument_group("engine (videos)")
    engine.add_argument("--workers", type=int, metavar="N", help="swap workers (0: automatic)")
    engine.add_argument("--queue", type=int, metavar="N", help="frames decoded ahead, 16..64 (32)")
    engine.add_argument("--segment-frames", type=int, metavar="N", help="frames per resumable segment (240)")
    engine.add_argument(
        "--batch", type=int, metavar="N", help="frames per model call where models take a batch (auto)"
    )
    engine.add_argument(
        "--encoder-jobs", type=int, metavar="N", help="segments encoded at once (0: one a core, at most 4)"
    )
    engine.add_argument("--no-resume", action="store_true", help="start over instead of resuming")
    engine.add_argument("--software-decoder", action="store_true", help="never use NVDEC")
    engine.add_argument(
        "--enqueue", action="store_true", help="add the job to the export queue instead (`queue run`)"
    )
    out = swap.add_argument_group("output")
    out.add_argument(
        "--watermark",
        nargs="?",
        const=WATERMARK_TEXT,
        metavar="TEXT",
        help=f"stamp a visible watermark ('{WATERMARK_TEXT}' when no text is given)",
    )
    out.add_argument(
        "--content-check",
        action="store_true",
        help="block the output when the installed NSFW analysers agree it is explicit",
    )
    out.add_argument(
        "--analysers",
        nargs="+",
        metavar="ID",
        help="content analyser models to vote (implies --content-check; default: every installed one)",
    )
    out.add_argument("--no-audio", action="store_true", help="leave the target's audio out")
    out.add_argument("--codec", choices=["h264", "hevc"], default="h264", help="video codec (h264)")
    out.add_argument("--crf", type=int, default=18, help="video quality, lower is better (18)")
    out.add_argument(
        "--x264-preset",
        choices=X264_PRESETS,
        default="veryfast",
        help="x264/x265 speed against size, ultrafast … veryslow (veryfast); NVENC has its own",
    )
    out.add_argument("--software-encoder", action="store_true", help="never use NVENC")
    out.add_argument(
        "--require-faces",
        action="store_true",
        help="refuse a video with no face in any frame (default: write it through, nothing swapped)",
    )
    out.add_argument(
        "--profile",
        action="store_true",
        help="time each stage (waits for the GPU per stage); writes OUTPUT.profile.csv and .json",
    )
    swap.set_defaults(handler=LazyHandler("app.cli.swap_run", "swap_faces"))


def add_look_options(parser: argparse.ArgumentParser) -> None:
    """The options that make PipelineSettings (preset, models, look, faces, tracking), shared with
    `live`; `build_settings` reads them back."""
    models = parser.add_argument_group("models")
    models.add_argument(
        "--preset",
        choices=[p.value for p in Preset],
        default="fast",
        help="starting point for the settings below (fast)",
    )
    models.add_argument("--user-preset", metavar="NAME", help="start from a preset saved with `presets save`")
    models.add_argument("--settings", type=Path, metavar="FILE", help="start from a settings JSON file")
    models.add_argument("--swapper", metavar="ID", help="swapper model (default: the catalog's default)")
    models.add_argument("--restorer", metavar="ID|none", help="face restorer, or none")
    models.add_argument("--restore-blend", type=float, metavar="0..1", help="how much restoration shows")
    models.add_argument("--fidelity", type=float, metavar="0..1", help="CodeFormer fidelity weight")
    models.add_argument("--detector", metavar="ID", help="face detector (default: the catalog's default)")
    models.add_argument("--providers", choices=HINTS, help="where the provider chain starts (auto)")
    look = parser.add_argument_group("swap and composite")
    look.add_argument("--strength", type=float, metavar="0..1", help="identity strength (1)")
    look.add_argument("--passes", type=int, metavar="N", help="swapper passes, 1..4 (1)")
    look.add_argument(
        "--pixel-boost", type=int, metavar="PX", help="crop side: 1-4x the model's (e.g. 256, 512)"
    )
    look.add_argument(
        "--mask",
        nargs="+",
        metavar="PART[=ID]",
        help=f"mask parts: {', '.join(MASK_PARTS)}; e.g. --mask box occluder parser=bisenet_resnet_18",
    )
    look.add_argument(
        "--regions",
        nargs="+",
        choices=PARSER_CLASSES,
        metavar="REGION",
        help=f"face-parser regions to keep (default: {' '.join(FACE_REGIONS)})",
    )
    look.add_argument("--feather", type=float, metavar="%", help="box-mask feather, %% of the face size")
    look.add_argument(
        "--padding",
        type=float,
        nargs=4,
        metavar=("TOP", "RIGHT", "BOTTOM", "LEFT"),
        help="box-mask padding, %% of the crop",
    )
    look.add_argument("--colour", type=float, metavar="0..1", help="colour transfer strength (0: off)")
    look.add_argument("--edge-smoothing", type=float, metavar="%", help="guided-filter edge smoothing")
    faces = parser.add_argument_group("faces")
    faces.add_argument("--faces", choices=["many", "one"], help="swap every face, or the largest (many)")
    faces.add_argument("--score", type=float, help="minimum detection score (preset: 0.4-0.6)")
    faces.add_argument("--nms", type=float, help="NMS IoU threshold (0.4)")
    faces.add_argument("--rotation", choices=["off", "auto"], help="find rotated faces too (preset)")
    faces.add_argument("--max-faces", type=int, metavar="N", help="at most N faces per frame (0: all)")
    faces.add_argument("--detector-size", type=int, metavar="PX", help="detector input side, 160..640")
    faces.add_argument("--landmarker", metavar="ID|auto|none", help="dense landmark model (preset)")
    track = parser.add_argument_group("tracking and stabilisation (videos)")
    track.add_argument(
        "--track-interval", type=int, metavar="N", help="detect every N frames, track between (preset)"
    )
    track.add_argument("--no-tracking", action="store_true", help="detect on every frame, no tracks")
    track.add_argument(
        "--stabilise", choices=[level.value for level in StabiliserLevel], help="landmark smoothing (preset)"
    )
