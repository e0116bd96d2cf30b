"""Per-model GPU timings, variant by variant: where each millisecond of a model call goes.

    python tools/model_timings.py MODELS_DIR [--ids ID …] [--out FILE.json]

For each model in MODELS_DIR (real models or stand-ins, through the catalog and the store like the app),
on the CUDA provider, median ms per call over realistic inputs (app.inference.parity), batch 1 unless
said:
- `bare`: a plain ONNX Runtime session with ORT's default CUDA options, I/O-bound to torch tensors, the
  same binding reused (the floor Doppel's own calls are compared with);
- `doppel_fp32` / `doppel_fp32_exhaustive`: Doppel's session (its options; cuDNN search heuristic, the
  default, or exhaustive), fp32, no graphs: with `bare` this says what Doppel's own call path costs;
- `doppel_fp16`: the gated fp16 rewrite; `doppel_fp16_graph`: plus CUDA graphs;
- `batch8_per_item`: the fastest variant at batch 8 (the batch-axis rewrite), per item;
plus each variant's load ms (as a job's preload: load, warm-up, graph probe and captures) and first-run
ms (the cuDNN search is paid there). A developer tool for the
lent GPU; its numbers go into the closing notes beside the benchmark's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from app.core.settings import InferenceSettings
from app.inference.binding import bind_input, bind_output
from app.inference.ort import onnxruntime
from app.inference.parity import InputSpec, realistic_inputs
from app.inference.runtime import InferenceRuntime
from app.inference.shapes import warmup_shape
from app.models.catalog import load_catalog
from app.models.store import ModelStore

RUNS = 30


def _median_ms(call: Callable[[], object], runs: int = RUNS) -> float:
    for _ in range(3):
        call()
    torch.cuda.synchronize()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1000.0)
    return round(statistics.median(times), 3)


def _bare(path: Path, feeds: dict[str, torch.Tensor]) -> dict[str, float]:
    started = time.perf_counter()
    session = onnxruntime.InferenceSession(str(path), providers=["CUDAExecutionProvider"])
    load_ms = (time.perf_counter() - started) * 1000.0
    binding = session.io_binding()
    ins = {i.name: i for i in session.get_inputs()}
    for name, tensor in feeds.items():
        bind_input(binding, name, tensor, ins[name].type)
    first = session.run(None, {n: t.cpu().numpy() for n, t in feeds.items()})
    outs = []
    for meta, value in zip(session.get_outputs(), first, strict=True):
        out = torch.empty(
            value.shape, dtype=torch.float32 if "float" in meta.type else torch.int64, device="cuda"
        )
        bind_output(binding, meta.name, out, meta.type)
        outs.append(out)
    started = time.perf_counter()
    session.run_with_iobinding(binding)
    first_ms = (time.perf_counter() - started) * 1000.0
    steady = _median_ms(lambda: session.run_with_iobinding(binding))
    return {"load_ms": round(load_ms, 1), "first_run_ms": round(first_ms, 1), "ms": steady}


def _doppel(
    store: ModelStore, model_id: str, settings: InferenceSettings, cache: Path, batch: int = 1
) -> dict[str, Any]:
    runtime = InferenceRuntime(store, settings, cache_root=cache)
    try:
        started = time.perf_counter()
        runtime.preload([model_id])  # as a job starts: load, warm up, probe and capture CUDA graphs
        with runtime.session(model_id, provider="cuda") as session:
            load_ms = (time.perf_counter() - started) * 1000.0
            spec = runtime.load_spec(model_id, runtime.precision_for(model_id))
            variant = spec.variant(session.provider)
            if batch > 1 and not runtime.takes_a_batch(model_id):
                return {"skipped": "no batch axis (the rewrite did not pass its gate)"}
            feeds = _feeds(store, model_id, session, batch)
            ms = _median_ms(lambda: session.run(feeds))
            return {
                "load_ms": round(load_ms, 1),
                "first_run_ms": round(session.first_run_ms or 0.0, 1),
                "ms": round(ms / batch, 3),
                "provider": session.provider.value,
                "file": variant.tag if variant else "original",
                "cuda_graph": session.uses_cuda_graph,
            }
    finally:
        runtime.close()


def _feeds(store: ModelStore, model_id: str, session: Any, batch: int) -> dict[str, torch.Tensor]:
    entry = store.catalog.get(model_id)
    specs = []
    for spec, name in zip(entry.inputs, session.input_names, strict=True):
        shape = warmup_shape(entry, spec)
        if batch > 1 and len(shape) >= 2:
            shape = (batch, *shape[1:])
        dtype = {"float32": torch.float32, "float16": torch.float16, "float64": torch.float64}.get(
            spec.dtype, torch.int64
        )
        specs.append(InputSpec(name, shape, dtype))
    return {n: t.cuda() for n, t in realistic_inputs(entry, specs, seed=5).items()}


def time_model(store: ModelStore, model_id: str, work: Path) -> dict[str, Any]:
    graphs_off = {"cuda_graphs": "off"}
    variants = {
        "doppel_fp32": InferenceSettings(precision="fp32", batch_axis="off", **graphs_off),
        "doppel_fp32_exhaustive": InferenceSettings(
            precision="fp32", batch_axis="off", cudnn_conv_algo_search="exhaustive", **graphs_off
        ),
        "doppel_fp16": InferenceSettings(precision="fp16", **graphs_off),
        "doppel_fp16_graph": InferenceSettings(precision="fp16"),
    }
    entry = store.catalog.get(model_id)
    path = store.status(entry).path
    probe = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    specs = [
        InputSpec(meta.name, warmup_shape(entry, spec), torch.float32)
        for meta, spec in zip(probe.get_inputs(), entry.inputs, strict=True)
    ]
    del probe
    feeds = {n: t.cuda() for n, t in realistic_inputs(entry, specs, 5).items()}
    result: dict[str, Any] = {"bare": _bare(path, feeds)}
    for name, settings in variants.items():
        result[name] = _doppel(store, model_id, settings, work / "cache")  # one cache: rewrites made once
    result["batch8_per_item"] = _doppel(store, model_id, variants["doppel_fp16_graph"], work / "cache", 8)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", type=Path, help="models folder (real models or stand-ins)")
    parser.add_argument("--ids", nargs="+", required=True, help="catalog ids to time")
    parser.add_argument("--out", type=Path, help="write the JSON here too")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        sys.stderr.write("model_timings: needs a CUDA GPU\n")
        return 1
    catalog = load_catalog()
    store = ModelStore(args.models, catalog.merged(ModelStore(args.models, catalog).standin_entries()))
    with tempfile.TemporaryDirectory() as work:
        report = {model_id: time_model(store, model_id, Path(work)) for model_id in args.ids}
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
