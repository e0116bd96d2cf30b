"""The environment report behind `python main.py check-env`: what this machine can run, and how.

Gathers facts from the inference runtime (providers and why not, GPU, CUDA/cuDNN/TensorRT versions,
fallbacks so far, the CUDA-graph matrix), from PyAV (hardware decode and encode) and from the model store,
and puts the conclusions first, in words.
"""

from __future__ import annotations

import platform
import sys
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from app import __version__
from app.inference.cuda_graphs import MATRIX_FILE, GraphMatrix
from app.inference.device import device_facts
from app.inference.discovery import discover
from app.inference.fallbacks import FALLBACK_FILE, FallbackLog
from app.inference.ort import ORT_VERSION, onnxruntime
from app.inference.providers import Provider
from app.inference.rewrites import FOLDER as REWRITES_FOLDER
from app.inference.rewrites import VERDICT_FILE as REWRITES_FILE
from app.inference.rewrites import VerdictFile
from app.media.capabilities import media_capabilities
from app.models.store import ModelState, ModelStore

RECENT_FALLBACKS = 10


def _conclusions(report: dict[str, Any]) -> list[str]:
    said = []
    providers = {p["provider"]: p for p in report["onnxruntime"]["providers"]}
    if not report["gpu"]["present"]:
        said.append("No NVIDIA GPU found: everything runs on the CPU; expect low speed.")
    elif providers["cuda"]["usable"]:
        said.append(f"GPU: {report['gpu']['devices'][0]['name']}; models run on CUDA.")
    else:
        said.append(f"CUDA is not usable ({providers['cuda']['reason']}): running on CPU, expect low speed.")
    if report["gpu"]["present"] and not providers["tensorrt"]["usable"]:
        said.append(f"TensorRT is not available ({providers['tensorrt']['reason']}): using CUDA.")
    counts = report["models"]["counts"]
    if counts.get("present", 0) == 0:
        said.append("No real models installed yet: `python main.py models download --default`.")
    kept = [
        f"{r['model_id']} ({r['reason']})"
        for r in report["rewrites"]
        if r["kind"] == "fp16" and not r["used"]
    ]
    if kept:
        said.append(
            f"These models stay fp32 on CUDA, their fp16 rewrite failed its check: {'; '.join(kept)}."
        )
    if report["fallbacks"]["total"]:
        said.append(f"{report['fallbacks']['total']} provider fallback(s) recorded; see 'fallbacks'.")
    return said


def environment_report(store: ModelStore, cache_root: Path, probe: bool = True) -> dict[str, Any]:
    facts = device_facts()
    statuses = discover(probe)
    media = media_capabilities()
    model_states = store.statuses()
    counts = Counter(s.state.value for s in model_states)
    history = FallbackLog(cache_root / FALLBACK_FILE).history()
    matrix = GraphMatrix(cache_root / MATRIX_FILE).results()
    gpu_index = 0 if facts.has_gpu else None
    report: dict[str, Any] = {
        "doppel": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "onnxruntime": {
            "version": ORT_VERSION,
            "providers_in_build": list(onnxruntime.get_available_providers()),
            "providers": [
                {"provider": p.value, "usable": s.usable, "reason": s.reason, "probed": s.probed}
                for p, s in statuses.items()
            ],
        },
        "gpu": {
            "present": facts.has_gpu,
            "devices": [asdict(g) for g in facts.gpus],
            "driver": facts.driver,
        },
        "versions": {
            "torch": facts.torch_version,
            "cuda (torch build)": facts.torch_cuda,
            "cudnn": facts.cudnn,
            "tensorrt": facts.tensorrt,
        },
        "torch_device": f"cuda:{gpu_index}" if gpu_index is not None and torch.cuda.is_available() else "cpu",
        "media": asdict(media),
        "models": {
            "dir": str(store.root),
            "counts": dict(counts),
            "present": [s.entry.id for s in model_states if s.state is ModelState.PRESENT],
            "standins": [s.entry.id for s in model_states if s.state is ModelState.STANDIN],
        },
        "fallbacks": {
            "total": len(history),
            "by_model": dict(Counter(f"{e.model_id}: {e.source.value}->{e.target}" for e in history)),
            "recent": [e.sentence() for e in history[-RECENT_FALLBACKS:]],
        },
        "cuda_graphs": [
            {
                "model_id": r.model_id,
                "provider": r.provider,
                "verdict": r.verdict,
                "reason": r.reason,
                "sm": r.sm,
                "runtime": r.runtime,
            }
            for r in matrix.values()
        ],
        # fp16 and batch-axis rewrites: which models run them, and why the others stay as they are.
        "rewrites": [
            {
                "model_id": v.model_id,
                "kind": v.kind,
                "used": v.passed,
                "reason": v.reason,
                "provider": v.provider,
                "sm": v.sm,
                "tool": v.tool,
            }
            for v in VerdictFile(cache_root / REWRITES_FOLDER / REWRITES_FILE).all().values()
        ],
    }
    report["summary"] = _conclusions(report)
    return report


def provider_line(entry: dict[str, Any]) -> str:
    label = Provider(entry["provider"]).label
    return f"{label}: usable" if entry["usable"] else f"{label}: not usable: {entry['reason']}"
