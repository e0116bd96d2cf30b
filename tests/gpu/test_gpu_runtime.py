"""On a real NVIDIA GPU with onnxruntime-gpu: CUDA I/O binding without host copies, TensorRT falling
back to CUDA with its reason, a CUDA run failure falling back to the CPU, the CUDA-graph probe, and the
pool freeing GPU memory. Skipped where ONNX Runtime has no usable CUDA provider (CI has none); run on the
lent GPU machine: `python -m pytest tests/gpu -v`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.profiler import ProfilerActivity, profile

from app.core.settings import InferenceSettings
from app.inference.discovery import discover
from app.inference.faults import Fault, FaultPlan
from app.inference.providers import Provider
from app.inference.runtime import InferenceRuntime
from app.models.catalog import load_catalog
from app.models.store import ModelStore
from tests.support.threads import run_together
from tools.make_standins import ComputeSize, make_standins

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available() or not discover()[Provider.CUDA].usable,
    reason="needs an NVIDIA GPU and onnxruntime-gpu with a usable CUDA provider",
)

PROBE_ENABLED = ["inswapper_128", "arcface_w600k_r50", "gfpgan_1.4"]
PROBE_REFUSED = "scrfd_2.5g"  # anchor counts follow the input size: shape work runs on the CPU


@pytest.fixture(scope="module")
def gpu_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("gpu-standins")
    make_standins(directory, load_catalog(), [*PROBE_ENABLED, PROBE_REFUSED, "occluder"], ComputeSize(32, 3))
    return directory


def runtime_for(
    directory: Path, tmp_path: Path, settings: InferenceSettings | None = None, **options: object
) -> InferenceRuntime:
    """fp32 and TF32 off unless asked: results are compared across providers, where fp16's and TF32's
    rounding would show (fp16's own parity gate is tested in tests/inference)."""
    catalog = load_catalog()
    catalog = catalog.merged(ModelStore(directory, catalog).standin_entries())
    settings = settings or InferenceSettings(allow_tf32=False, precision="fp32")
    return InferenceRuntime(
        ModelStore(directory, catalog), settings, cache_root=tmp_path / "cache", **options
    )  # type: ignore[arg-type]


def _copies(trace: profile) -> dict[str, int]:
    counts = {"HtoD": 0, "DtoH": 0, "DtoD": 0}
    for event in trace.events():
        for kind in counts:
            if "Memcpy" in event.name and kind in event.name:
                counts[kind] += 1
    return counts


def test_cuda_io_binding_makes_no_host_copies(gpu_models: Path, tmp_path: Path) -> None:
    runtime = runtime_for(gpu_models, tmp_path)
    with runtime.session("inswapper_128", provider="cuda") as session:
        assert session.provider is Provider.CUDA and session.device.type == "cuda"
        feeds = session.example_inputs(seed=4)
        session.run(feeds)  # first run: cuDNN search, arena growth
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as bound_trace:
            out = session.run(feeds)
            torch.cuda.synchronize()
        ort_session = session._loaded._session
        numpy_feeds = {k: v.cpu().numpy() for k, v in feeds.items()}
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as plain_trace:
            plain = ort_session.run(None, numpy_feeds)
    bound, unbound = _copies(bound_trace), _copies(plain_trace)
    print(f"memcpy events per run: I/O binding {bound}, plain numpy run {unbound}")
    assert bound["HtoD"] == 0 and bound["DtoH"] == 0
    assert unbound["HtoD"] >= 1 and unbound["DtoH"] >= 1  # the measurement does see copies
    assert out["output"].device.type == "cuda"
    np.testing.assert_allclose(out["output"].cpu().numpy(), plain[0], rtol=1e-4, atol=1e-5)


def test_tensorrt_falls_back_to_cuda_with_its_reason(gpu_models: Path, tmp_path: Path) -> None:
    runtime = runtime_for(gpu_models, tmp_path)
    with runtime.session("occluder", provider="tensorrt") as session:
        feeds = session.example_inputs(seed=1)
        out = session.run(feeds)
        assert session.provider is Provider.CUDA
    [event] = runtime.fallbacks.events()
    print("TensorRT fallback:", event.sentence())
    assert (event.source, event.target, event.phase) == (Provider.TENSORRT, Provider.CUDA, "load")
    assert "libnvinfer" in event.reason or "TensorRT" in event.reason
    with runtime.session("occluder", provider="cpu") as cpu:
        reference = cpu.run({k: v.cpu() for k, v in feeds.items()})
    np.testing.assert_allclose(out["output"].cpu().numpy(), reference["output"].numpy(), rtol=1e-4, atol=1e-5)


def test_a_cuda_run_failure_falls_back_to_the_cpu_with_a_correct_result(
    gpu_models: Path, tmp_path: Path
) -> None:
    no_warmup = InferenceSettings(
        allow_tf32=False, precision="fp32", warmup_on_load=False
    )  # the caller's run meets the fault
    runtime = runtime_for(gpu_models, tmp_path, no_warmup, faults=FaultPlan([Fault(Provider.CUDA, "run")]))
    with runtime.session("inswapper_128", provider="cuda") as session:
        assert session.provider is Provider.CUDA
        feeds = session.example_inputs(seed=2)  # on the GPU
        out = session.run(feeds)
        assert session.provider is Provider.CPU
    assert out["output"].device.type == "cuda"  # back on the caller's device
    clean = runtime_for(gpu_models, tmp_path / "clean")
    with clean.session("inswapper_128", provider="cuda") as reference:
        expected = reference.run(feeds)["output"]
    torch.testing.assert_close(out["output"], expected, rtol=1e-4, atol=1e-5)
    [event] = runtime.fallbacks.events()
    assert (event.source, event.target, event.phase) == (Provider.CUDA, Provider.CPU, "run")


def test_cuda_graph_probe_enables_convolutional_models_and_refuses_the_detector(
    gpu_models: Path, tmp_path: Path
) -> None:
    runtime = runtime_for(gpu_models, tmp_path)
    verdicts = {}
    for model_id in [*PROBE_ENABLED, PROBE_REFUSED]:
        result = runtime.probe_cuda_graphs(model_id, Provider.CUDA)
        print(f"CUDA graph probe {model_id}: {result.verdict} ({result.reason})")
        verdicts[model_id] = result.verdict
    assert all(verdicts[m] == "enabled" for m in PROBE_ENABLED)
    assert verdicts[PROBE_REFUSED] in ("refused", "skipped")
    # A session loaded after the probe replays graphs (captured in preload) and still gives the plain
    # result on new inputs.
    runtime.preload(["inswapper_128"])
    with runtime.session("inswapper_128", provider="cuda") as session:
        assert session.uses_cuda_graph
        plain = runtime_for(
            gpu_models,
            tmp_path / "plain",
            settings=InferenceSettings(cuda_graphs="off", allow_tf32=False, precision="fp32"),
        )
        with plain.session("inswapper_128", provider="cuda") as reference:
            assert not reference.uses_cuda_graph
            for seed in range(5):
                feeds = session.example_inputs(seed=seed)
                torch.testing.assert_close(session.run(feeds)["output"], reference.run(feeds)["output"])


def test_graphs_captured_in_preload_replay_on_workers_beside_torch_work(
    gpu_models: Path, tmp_path: Path
) -> None:
    """ORT keeps CUDA graphs per calling thread: replays from worker threads must not capture again
    (a capture beside another thread's torch kernels fails both, "operation not permitted when
    stream is capturing", as the H200 bench showed). Preload probes and captures; workers replay
    while other threads allocate, convolve and synchronise."""
    models = ["inswapper_128", "gfpgan_1.4"]
    runtime = runtime_for(gpu_models, tmp_path)
    runtime.preload(models)  # probes unjudged models, then captures their graphs
    assert all(runtime.describe(m)["cuda_graphs"] for m in models)
    plain = runtime_for(
        gpu_models,
        tmp_path / "plain",
        settings=InferenceSettings(cuda_graphs="off", allow_tf32=False, precision="fp32"),
    )
    expected: dict[str, list[torch.Tensor]] = {}
    feeds: dict[str, list[dict[str, torch.Tensor]]] = {}
    for model_id in models:
        with plain.session(model_id, provider="cuda") as reference:
            feeds[model_id] = [reference.example_inputs(seed=s) for s in range(3)]
            expected[model_id] = [reference.run(f)["output"] for f in feeds[model_id]]

    def work(index: int) -> None:
        if index % 2:  # the pipeline's own kernels, allocations and syncs on another thread
            weight = torch.randn(64, 64, 3, 3, device="cuda")
            for _ in range(200):
                image = torch.randn(2, 64, 128, 128, device="cuda")
                torch.nn.functional.conv2d(image, weight, padding=1).sum().item()
            return
        for round_ in range(6):
            for model_id in models:
                with runtime.session(model_id) as session:
                    item = (index + round_) % 3
                    out = session.run(feeds[model_id][item])["output"]
                    torch.testing.assert_close(out, expected[model_id][item], rtol=2e-3, atol=2e-3)

    run_together(4, work)


def test_concurrent_calls_on_a_cuda_session_are_correct(gpu_models: Path, tmp_path: Path) -> None:
    runtime = runtime_for(gpu_models, tmp_path)
    with runtime.session("gfpgan_1.4", provider="cuda") as session:
        feeds = [session.example_inputs(seed=s) for s in range(4)]
        expected = [session.run(f)["output"] for f in feeds]

        def work(index: int) -> None:
            for _ in range(5):
                torch.testing.assert_close(session.run(feeds[index])["output"], expected[index])

        run_together(4, work)


@pytest.mark.gpu_alone  # device-wide free memory: another worker's allocations would hide the freeing
def test_pool_eviction_frees_gpu_memory(gpu_models: Path, tmp_path: Path) -> None:
    runtime = runtime_for(
        gpu_models, tmp_path, settings=InferenceSettings(max_sessions=1, allow_tf32=False, precision="fp32")
    )
    torch.cuda.synchronize()
    before, _ = torch.cuda.mem_get_info()
    with runtime.session("gfpgan_1.4", provider="cuda") as session:
        session.run(session.example_inputs())
    held, _ = torch.cuda.mem_get_info()
    with runtime.session("occluder", provider="cuda"):
        pass  # evicts gfpgan
    after, _ = torch.cuda.mem_get_info()
    print(f"GPU free MiB: before {before >> 20}, gfpgan held {held >> 20}, after eviction {after >> 20}")
    assert session.closed
    assert after > held
