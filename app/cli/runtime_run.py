"""What `python main.py warmup` and `check-env` do once their arguments are parsed (app.cli.runtime_cmd)."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from app.cli.output import human_size, say, say_json, table
from app.core.errors import DoppelError
from app.core.paths import cache_dir
from app.environment import environment_report, provider_line
from app.inference.cuda_graphs import ProbeResult
from app.inference.providers import GRAPH_PROVIDERS, Provider
from app.inference.runtime import InferenceRuntime
from app.inference.warmup import WarmupRow, warm_up
from app.models.context import AppContext


def _chosen_ids(args: argparse.Namespace, ctx: AppContext) -> list[str]:
    if args.ids:
        for model_id in args.ids:
            ctx.catalog.get(model_id)  # unknown ids fail here, with suggestions
        return list(args.ids)
    usable = [s.entry.id for s in ctx.store.statuses() if s.usable and s.entry.default]
    if not usable:
        raise DoppelError(
            f"No default model is installed in {ctx.models_dir.path}: name models to warm, or run "
            "`python main.py models download --default`"
        )
    return usable


def _row_text(row: WarmupRow) -> list[str]:
    provider = Provider(row.provider).label + (" +graph" if row.cuda_graph else "")
    if row.provider != row.requested:
        provider += f" (asked {Provider(row.requested).label})"
    return [
        row.model_id + (" [stand-in]" if row.standin else ""),
        provider,
        f"{row.load_ms:.0f}",
        f"{row.first_run_ms:.1f}",
        f"{row.steady_ms:.2f}",
        human_size(row.footprint_bytes),
    ]


def _probe_all(runtime: InferenceRuntime, ids: list[str]) -> list[ProbeResult]:
    results = []
    for model_id in ids:
        chain = runtime.chain_for(model_id)
        for provider in (p for p in GRAPH_PROVIDERS if p in chain):
            results.append(runtime.probe_cuda_graphs(model_id, provider))
    return results


def run_warmup(args: argparse.Namespace, ctx: AppContext) -> int:
    ids = _chosen_ids(args, ctx)
    runtime = InferenceRuntime(ctx.store, ctx.settings.inference)
    try:
        probes = _probe_all(runtime, ids) if args.probe_cuda_graphs else []
        rows = [warm_up(runtime, i, args.runs, args.provider, args.precision) for i in ids]
    finally:
        runtime.close()
    if args.json:
        say_json({"models": [asdict(r) for r in rows], "cuda_graph_probes": [asdict(p) for p in probes]})
        return 0
    for probe in probes:
        where = Provider(probe.provider).label
        say(f"CUDA graphs, {probe.model_id} on {where}: {probe.verdict} ({probe.reason})")
    table(
        [_row_text(r) for r in rows],
        header=["model", "provider", "load ms", "first run ms", "steady ms", "memory"],
    )
    for row in rows:
        for sentence in row.fallbacks:
            say(f"fallback: {sentence}")
    return 0


def check_env(args: argparse.Namespace, ctx: AppContext) -> int:
    report = environment_report(ctx.store, cache_dir(), probe=not args.no_probe)
    if args.json:
        say_json(report)
        return 0
    for sentence in report["summary"]:
        say(sentence)
    say()
    ort = report["onnxruntime"]
    say(f"Doppel {report['doppel']}, Python {report['python']}, {report['platform']}")
    say(f"ONNX Runtime {ort['version']}")
    for entry in ort["providers"]:
        say(f"  {provider_line(entry)}")
    versions = report["versions"]
    cuda = versions["cuda (torch build)"]
    say(
        f"torch {versions['torch']} (device {report['torch_device']}, "
        + (f"built with CUDA {cuda})" if cuda else "a CPU build, without CUDA)")
    )
    say(f"cuDNN {versions['cudnn'] or 'not installed'}; TensorRT {versions['tensorrt'] or 'not installed'}")
    gpu = report["gpu"]
    if gpu["present"]:
        for device in gpu["devices"]:
            say(
                f"GPU {device['index']}: {device['name']} ({device['sm']}, "
                f"{human_size(device['vram_total_bytes'])}), driver {gpu['driver']}"
            )
    else:
        say("GPU: none")
    media = report["media"]
    hardware = [c["name"] for c in [media["cuda_decode"], *media["encoders"]] if c["available"]]
    usable = ", ".join(hardware) or "no codecs usable"
    say(f"PyAV {media['pyav']} (libavcodec {media['libavcodec']}): {usable}")
    for capability in [media["cuda_decode"], *media["encoders"]]:
        if not capability["available"]:
            say(f"  {capability['name']}: {capability['reason']}")
    models = report["models"]
    counts = ", ".join(f"{n} {state}" for state, n in sorted(models["counts"].items()))
    say(f"Models in {models['dir']}: {counts}")
    fallbacks = report["fallbacks"]
    say(f"Fallbacks recorded: {fallbacks['total']}")
    for sentence in fallbacks["recent"]:
        say(f"  {sentence}")
    say(f"CUDA-graph matrix: {len(report['cuda_graphs'])} result(s)")
    for result in report["cuda_graphs"]:
        say(f"  {result['model_id']} on {result['provider']} ({result['sm']}): {result['verdict']}")
    say(f"Model rewrites (fp16, batch axis): {len(report['rewrites'])} verdict(s)")
    for rewrite in report["rewrites"]:
        used = "used" if rewrite["used"] else "not used"
        where = f"{rewrite['model_id']} {rewrite['kind']} on {rewrite['provider']}"
        say(f"  {where}: {used}: {rewrite['reason']}")
    return 0
