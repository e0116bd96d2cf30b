"""`python main.py bench [--json OUT]`: the whole pipeline on generated clips, measured (tools/bench.py).

The benchmark builds its own models (the real SCRFD detector fetched from PyPI, compute stand-ins for
the rest, or `--real` installed models) and clips in a work folder under the cache, so it measures
the same thing on every machine; figures for the machine it ran on come out as a table or JSON.
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
from app.pipeline.choices import Preset  # not app.pipeline.presets: parsing must not load the engine

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
        "--sizes", nargs="+", default=["720p", "1080p"], metavar="SIZE", help="720p, 1080p, 480p, 240p or WxH"
    )
    bench.add_argument("--seconds", type=float, default=3.0, help="clip length (3)")
    bench.add_argument("--fps", type=int, default=30, help="clip frame rate (30)")
    bench.add_argument("--preset", choices=[p.value for p in Preset], default="balanced", help="(balanced)")
    bench.add_argument("--providers", choices=HINTS, help="where the provider chain starts (auto)")
    bench.add_argument("--workers", type=int, default=0, help="swap workers (0: automatic)")
    bench.add_argument("--no-live", action="store_true", help="skip the live-latency run")
    bench.add_argument("--real", action="store_true", help="use the installed real models, not stand-ins")
    bench.add_argument("--standin-width", type=int, default=64, help="compute stand-in channels (64)")
    bench.add_argument("--standin-depth", type=int, default=6, help="compute stand-in convolutions (6)")
    bench.add_argument("--work-dir", type=Path, metavar="DIR", help="models and clips (default: the cache)")
    bench.set_defaults(handler=run_bench_command)


def run_bench_command(args: argparse.Namespace, ctx: AppContext) -> int:
    # The benchmark lives with the developer tools (it builds stand-ins, fetches the real detector);
    # imported by name so the engine's type checking does not pull tools/ in.
    bench = importlib.import_module("tools.bench")
    standins = importlib.import_module("tools.make_standins")

    if args.seconds <= 0 or args.fps < 1:
        raise UsageError("bench: --seconds must be > 0 and --fps ≥ 1")
    try:
        for size in args.sizes:
            bench.parse_size(size)
    except ValueError as exc:
        raise UsageError(f"bench: {exc}") from None
    options = bench.BenchOptions(
        folder=args.work_dir or cache_dir() / "bench",
        sizes=tuple(args.sizes),
        seconds=args.seconds,
        fps=args.fps,
        preset=Preset(args.preset),
        provider=args.providers,
        workers=args.workers,
        compute=standins.ComputeSize(args.standin_width, args.standin_depth),
        real_store=ctx.store if args.real else None,
        live=not args.no_live,
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
    if args.json:
        say_json(report)
        return 0
    _print(report)
    if args.out is not None:
        say(f"Report: {args.out}")
    return 0


def _print(report: dict[str, Any]) -> None:
    machine = report["machine"]
    say(f"Doppel bench on {machine['gpu'] or 'CPU'} ({machine['platform']}), preset {report['preset']}")
    for model, kind in report["models"].items():
        say(f"  {model}: {kind}")
    for name, result in report["results"].items():
        resources = result["resources"]
        live = result.get("live", {})
        say(
            f"\n{name} ({result['size']}, {result['frames']} frames on {result['device']}, "
            f"{result['workers']} worker(s), decoder {result['decoder']}, encoder {result['encoder']})"
        )
        rows = [
            ["export fps", result["export_fps"]],
            ["end-to-end ms/frame", result["e2e_ms_per_frame"]],
            ["pipeline efficiency", result["efficiency"]],
            ["live latency p50 / p99 ms", f"{live.get('latency_p50_ms')} / {live.get('latency_p99_ms')}"],
            ["live fps (skipped)", f"{live.get('fps')} ({live.get('skipped')})"],
            [
                "GPU util mean / peak %",
                f"{resources.get('gpu_util_mean_pct')} / {resources.get('gpu_util_peak_pct')}",
            ],
            [
                "peak VRAM MB (NVML / torch)",
                f"{resources.get('gpu_mem_peak_mb')} / {resources.get('torch_max_reserved_mb')}",
            ],
            ["peak host RSS MB", resources.get("host_rss_peak_mb")],
        ]
        table([[k, str(v)] for k, v in rows], header=["measure", "value"])
        stages = [[k, str(v["p50"]), str(v["p95"]), str(v["count"])] for k, v in result["stages_ms"].items()]
        table(stages, header=["stage", "p50 ms", "p95 ms", "calls"])
