"""`python main.py bench [--json] [--out FILE]`: the real-time pipeline, measured (tools/bench.py).

The benchmark runs the pipeline the real-time targets are set for (YOLOv8-face on every frame, 2DFAN4,
ArcFace, inswapper_128, GFPGAN 1.4, box mask) on a generated 1080p clip, with FLOP-matched stand-ins of
those models built once on this machine (or `--real` installed models). It reports the whole command's
time cold and warm, the first swapped frame, steady export fps, GPU busy %, live latency and the
highest rate live sustains, memory, and the limit (the sum of each model's isolated time per frame),
each beside its target.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.cli.models_cmd import UsageError
from app.cli.output import say, say_json, table
from app.core.paths import cache_dir
from app.inference.providers import HINTS

if TYPE_CHECKING:
    from app.models.context import AppContext


def add_parser(subparsers: Any, common: argparse.ArgumentParser) -> None:
    bench = subparsers.add_parser(
        "bench",
        parents=[common],
        help="measure the pipeline: export fps, live latency, GPU use",
        description=__doc__,
    )
    bench.add_argument(
        "--out", "--json-out", dest="out", type=Path, metavar="FILE", help="write the JSON report here"
    )
    bench.add_argument(
        "--size", default="1080p", metavar="SIZE", help="1080p, 720p, 480p, 240p or WxH (1080p)"
    )
    bench.add_argument("--seconds", type=float, default=10.0, help="clip length (10: 300 frames at 30 fps)")
    bench.add_argument("--fps", type=int, default=30, help="clip frame rate, the live rate (30)")
    bench.add_argument("--providers", choices=HINTS, help="where the provider chain starts (auto)")
    bench.add_argument("--workers", type=int, default=0, help="swap workers (0: automatic)")
    bench.add_argument("--no-live", action="store_true", help="skip the live runs")
    bench.add_argument("--no-command", action="store_true", help="skip the whole-command runs")
    bench.add_argument(
        "--no-cuda-graphs", action="store_true", help="the in-process runs without CUDA graphs"
    )
    bench.add_argument("--real", action="store_true", help="use the installed real models, not stand-ins")
    bench.add_argument(
        "--standin-scale",
        type=float,
        default=1.0,
        metavar="X",
        help="stand-ins at X of the real models' cost (1: FLOP-matched; smaller: for tests)",
    )
    bench.add_argument(
        "--work-dir", type=Path, metavar="DIR", help="models, clips, caches (default: the cache)"
    )
    bench.add_argument(
        "--trace",
        type=Path,
        metavar="FILE",
        help="one more export under torch's profiler (every thread, every CUDA stream): a gzipped "
        "Chrome trace here, and per frame the GPU's busy share and each thread's time in torch calls "
        "and synchronisations in the report",
    )
    bench.set_defaults(handler=run_bench_command)


def run_bench_command(args: argparse.Namespace, ctx: AppContext) -> int:
    # The benchmark lives with the developer tools (it builds stand-ins, fetches the real detector);
    # imported by name so the engine's type checking does not pull tools/ in.
    bench = importlib.import_module("tools.bench")

    if args.seconds <= 0 or args.fps < 1 or not 0 < args.standin_scale <= 1:
        raise UsageError("bench: --seconds must be > 0, --fps ≥ 1 and --standin-scale in (0, 1]")
    try:
        bench.parse_size(args.size)
    except ValueError as exc:
        raise UsageError(f"bench: {exc}") from None
    options = bench.BenchOptions(
        folder=args.work_dir or cache_dir() / "bench",
        size=args.size,
        seconds=args.seconds,
        fps=args.fps,
        provider=args.providers,
        workers=args.workers,
        real_store=ctx.store if args.real else None,
        live=not args.no_live,
        whole_command=not args.no_command,
        standin_scale=args.standin_scale,
        cuda_graphs=not args.no_cuda_graphs,
        trace=args.trace,
    )

    def progress(line: str) -> None:
        if not args.json:
            sys.stderr.write(line + "\n")

    report: dict[str, Any] = bench.run_bench(options, progress)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        temporary = args.out.with_name(args.out.name + ".partial")
        temporary.write_text(json.dumps(report, indent=2), encoding="utf-8")
        temporary.replace(args.out)
    failed = bool(report["results"].get("errors"))
    if args.json:
        say_json(report)
        return 1 if failed else 0
    _print(report)
    if args.out is not None:
        say(f"Report: {args.out}")
    for part, error in report["results"].get("errors", {}).items():
        sys.stderr.write(f"error: bench {part} failed: {error}\n")
    return 1 if failed else 0


def _figure(value: Any) -> str:
    """A measured figure for the table: n/a where it was not measured (no GPU, a skipped part)."""
    if value is None:
        return "n/a"
    return str(round(value, 2)) if isinstance(value, float) else str(value)


def _print(report: dict[str, Any]) -> None:
    machine, results = report["machine"], report["results"]
    say(f"Doppel bench on {machine['gpu'] or 'CPU'} ({machine['platform']}), clip {report['clip']['size']}")
    for model, about in report["models"].items():
        cost = f": {about['gflops']} GFLOPs, {about['params_m']} M parameters" if "gflops" in about else ""
        say(f"  {model}: {about['kind']}{cost}")
    for model, how in results.get("execution", {}).items():
        say(f"  {model} runs on {how}")
    export = results.get("export")
    if export is None:
        return
    rows = [
        ["steady export fps", export["steady_fps"]],
        [
            "measured / limit ms per frame",
            f"{export['measured_ms_per_frame']} / {export['limit_ms_per_frame']}",
        ],
        ["one image (s)", results.get("image_swap_s")],
    ]
    if encoders := results.get("encoder_alone"):
        layout = f"{encoders['jobs']} × {encoders['threads_each']} threads"
        about = f"{encoders['encoder']} {encoders['preset']}, {layout}"
        rows.append([f"encoders alone fps ({about})", encoders["fps"]])
    for label, run in results.get("command", {}).items():
        rows.append([f"whole command, {label} (s)", f"{run['seconds']} (first frame {run['first_frame_s']})"])
    table([[k, str(v)] for k, v in rows], header=["measure", "value"])
    stages = [[k, str(v["p50"]), str(v["p95"]), str(v["count"])] for k, v in export["stages_ms"].items()]
    table(stages, header=["stage", "p50 ms", "p95 ms", "calls"])
    commands = results.get("command", {})
    steps = list(dict.fromkeys(step for run in commands.values() for step in run.get("milestones_s", {})))
    if steps:
        labels = list(commands)
        rows_s = [
            [step, *(str(commands[label].get("milestones_s", {}).get(step, "")) for label in labels)]
            for step in steps
        ]
        table(rows_s, header=["start-up step (s after launch)", *labels])
    waits = [[k, str(v)] for k, v in export.get("waits_ms_per_frame", {}).items()]
    if waits:
        table(waits, header=["blocked (steady run)", "ms per frame"])
    allocator = export.get("allocator_steady_run")
    if allocator:
        say(
            "CUDA allocator during the steady run: "
            + ", ".join(f"{name.removeprefix('num_')} {count}" for name, count in allocator.items())
        )
    traced = export.get("trace")
    if traced is not None:
        busy = "n/a (no GPU)" if traced["gpu_busy_pct"] is None else f"{traced['gpu_busy_pct']} %"
        say(f"Traced run ({traced['file']}): GPU busy {busy} of {traced['window_s']} s")
        threads = [
            [name, str(t["in_torch_calls_ms"]), str(t["torch_calls"]), str(t["in_syncs_ms"]), str(t["syncs"])]
            for name, t in traced["threads_per_frame"].items()
        ]
        table(threads, header=["thread (traced run)", "torch ms/frame", "calls", "sync ms/frame", "syncs"])
        streams = [[s, str(v["busy_ms"]), str(v["kernels"])] for s, v in traced["streams_per_frame"].items()]
        if streams:
            table(streams, header=["CUDA stream", "busy ms/frame", "kernels"])
    marks = {True: "met", False: "MISSED", None: "not measured"}
    targets = [[t["figure"], t["target"], _figure(t["measured"]), marks[t["met"]]] for t in report["targets"]]
    table(targets, header=["figure", "target", "measured", ""])
