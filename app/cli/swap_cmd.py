"""`python main.py swap -s SOURCE … -t TARGET -o OUTPUT`: swap faces in an image or a video."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from tqdm import tqdm

from app.cli.models_cmd import UsageError
from app.cli.output import say, say_json, table
from app.core.errors import DoppelError
from app.faces.detector import DetectionSettings
from app.faces.selection import SelectionMode, SelectionSettings
from app.inference.providers import HINTS
from app.inference.runtime import InferenceRuntime
from app.models.context import AppContext
from app.pipeline.jobs import JobReport, SwapJob, run_swap
from app.pipeline.presets import Preset, preset_settings
from app.processing.content import default_analysers
from app.processing.settings import FACE_REGIONS, PARSER_CLASSES, ProcessingSettings
from app.processing.watermark import DEFAULT_TEXT

MASK_PARTS = ("box", "occluder", "xseg", "parser")
DEFAULT_MASK_MODELS = {"occluder": "occluder", "xseg": "xseg", "parser": "faceparser_resnet34"}


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
        help="photo(s) of the face to paste; several photos of one person are combined",
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
    models = swap.add_argument_group("models")
    models.add_argument(
        "--preset",
        choices=[p.value for p in Preset],
        default="fast",
        help="starting point for the settings below (fast)",
    )
    models.add_argument("--swapper", metavar="ID", help="swapper model (default: the catalog's default)")
    models.add_argument("--restorer", metavar="ID|none", help="face restorer, or none")
    models.add_argument("--restore-blend", type=float, metavar="0..1", help="how much restoration shows")
    models.add_argument("--fidelity", type=float, metavar="0..1", help="CodeFormer fidelity weight")
    models.add_argument("--detector", metavar="ID", help="face detector (default: the catalog's default)")
    models.add_argument("--providers", choices=HINTS, help="where the provider chain starts (auto)")
    look = swap.add_argument_group("swap and composite")
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
    faces = swap.add_argument_group("faces")
    faces.add_argument(
        "--faces", choices=["many", "one"], default="many", help="swap every face, or the largest"
    )
    faces.add_argument("--score", type=float, default=0.5, help="minimum detection score (0.5)")
    faces.add_argument("--nms", type=float, default=0.4, help="NMS IoU threshold (0.4)")
    faces.add_argument("--rotation", choices=["off", "auto"], default="off", help="find rotated faces too")
    out = swap.add_argument_group("output")
    out.add_argument(
        "--watermark",
        nargs="?",
        const=DEFAULT_TEXT,
        metavar="TEXT",
        help=f"stamp a visible watermark ('{DEFAULT_TEXT}' when no text is given)",
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
    out.add_argument("--software-encoder", action="store_true", help="never use NVENC")
    out.add_argument("--profile", action="store_true", help="time each stage (waits for the GPU per stage)")
    swap.set_defaults(handler=swap_faces)


def _mask_update(parts: list[str] | None) -> dict[str, Any]:
    if not parts:
        return {}
    update: dict[str, Any] = {"box": False, "occluder": None, "xseg": None, "parser": None}
    for part in parts:
        name, _, model_id = part.partition("=")
        if name not in MASK_PARTS:
            raise UsageError(f"--mask: unknown part '{name}' (choose from {', '.join(MASK_PARTS)})")
        if name == "box":
            update["box"] = True
        else:
            update[name] = model_id or DEFAULT_MASK_MODELS[name]
    return update


def _given(**values: Any) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def build_settings(
    args: argparse.Namespace, runtime: InferenceRuntime
) -> tuple[ProcessingSettings, list[str]]:
    """The preset, then every flag the user gave on top of it (validated by the settings models)."""
    base, notes = preset_settings(Preset(args.preset), lambda i: _installed(runtime, i), args.swapper)
    restorer = None if args.restorer == "none" else args.restorer
    swap = base.swap.model_validate(
        {
            **base.swap.model_dump(),
            **_given(strength=args.strength, passes=args.passes, pixel_boost=args.pixel_boost),
        }
    )
    restore_update = _given(blend=args.restore_blend, fidelity=args.fidelity)
    if args.restorer is not None:
        restore_update["restorer"] = restorer
    restore = base.restore.model_validate({**base.restore.model_dump(), **restore_update})
    mask_update = {
        **_mask_update(args.mask),
        **_given(feather=args.feather, padding=args.padding, regions=args.regions),
    }
    mask = base.mask.model_validate({**base.mask.model_dump(), **mask_update})
    colour = base.colour.model_validate({**base.colour.model_dump(), **_given(strength=args.colour)})
    blend = base.blend.model_validate(
        {**base.blend.model_dump(), **_given(edge_smoothing=args.edge_smoothing)}
    )
    return ProcessingSettings(swap=swap, restore=restore, mask=mask, colour=colour, blend=blend), notes


def _installed(runtime: InferenceRuntime, model_id: str) -> bool:
    catalog = runtime.store.catalog
    return model_id in catalog and runtime.store.status(catalog.get(model_id)).usable


class _Bar:
    def __init__(self, enabled: bool, label: str) -> None:
        self.bar = tqdm(desc=label, unit="frame", file=sys.stderr, dynamic_ncols=True, disable=not enabled)

    def __call__(self, done: int, total: int) -> None:
        if self.bar.total != total:
            self.bar.total = total
        self.bar.n = done
        self.bar.refresh()


def swap_faces(args: argparse.Namespace, ctx: AppContext) -> int:
    inference = ctx.settings.inference
    if args.providers:
        inference = inference.model_copy(update={"provider": args.providers})
    runtime = InferenceRuntime(ctx.store, inference)
    try:
        try:
            processing, notes = build_settings(args, runtime)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise UsageError(f"swap: {problems}") from None
        analysers: tuple[str, ...] = ()
        if args.analysers:
            analysers = tuple(args.analysers)
        elif args.content_check:
            analysers = tuple(default_analysers(runtime))
            if not analysers:
                raise DoppelError(
                    "--content-check: no content analyser is installed "
                    "(python main.py models download open_nsfw nsfw_yolo_11m)"
                )
        job = SwapJob(
            sources=tuple(args.source),
            target=args.target,
            output=args.output,
            processing=processing,
            detector=args.detector,
            detection=DetectionSettings(score=args.score, nms=args.nms, rotation=args.rotation),
            selection=SelectionSettings(SelectionMode(args.faces)),
            watermark=args.watermark,
            analysers=analysers,
            audio=not args.no_audio,
            codec=args.codec,
            crf=args.crf,
            hardware_encoder=not args.software_encoder,
        )
        bar = _Bar(not args.json and sys.stderr.isatty(), args.target.name)
        try:
            report = run_swap(runtime, job, progress=bar, profile=args.profile)
        finally:
            bar.bar.close()
    finally:
        runtime.close()
    report.notes[:0] = notes
    _print_report(report, args.json)
    return 0


def _print_report(report: JobReport, as_json: bool) -> None:
    if as_json:
        say_json(
            {
                "output": str(report.output),
                "kind": report.kind,
                "frames": report.frames,
                "frames_with_faces": report.frames_with_faces,
                "faces_swapped": report.faces_swapped,
                "seconds": round(report.seconds, 3),
                "fps": round(report.fps, 2),
                "device": report.device,
                "encoder": report.encoder,
                "encoder_fallback": report.encoder_fallback,
                "models": list(report.models),
                "stage_ms": {k: round(v, 3) for k, v in report.stage_ms.items()},
                "notes": report.notes,
            }
        )
        return
    say(
        f"Wrote {report.output}: {report.faces_swapped} face(s) swapped in {report.frames} frame(s) "
        f"({report.frames_with_faces} with faces), {report.seconds:.1f} s on {report.device}"
    )
    if report.encoder:
        fallback = f" (not NVENC: {report.encoder_fallback})" if report.encoder_fallback else ""
        say(f"Encoder: {report.encoder}{fallback}")
    if report.stage_ms:
        table([[k, f"{v:.2f}"] for k, v in report.stage_ms.items()], header=["stage", "ms per call"])
    for note in report.notes:
        say(f"note: {note}")
