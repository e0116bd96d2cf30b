"""Provider options, the TensorRT engine-cache key, optimisation profiles, the CUDA-graph matrix, and
provider chains: the parts of the GPU path that are decided on any machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.settings import InferenceSettings
from app.inference.cuda_graphs import GraphMatrix, ProbeResult, graph_key, probe
from app.inference.discovery import discover
from app.inference.options import (
    CPU_THREADS_VARIABLE,
    EngineKey,
    cpu_threads,
    engine_cache_dir,
    provider_options,
    session_options,
    tensorrt_profiles,
)
from app.inference.providers import Provider, fallback_chain, parse_hint
from app.models.catalog import load_catalog
from tests.inference.conftest import RuntimeFactory

CATALOG = load_catalog()
ALL = {Provider.TENSORRT, Provider.CUDA, Provider.CPU}


def test_chains_run_from_the_hint_towards_the_cpu() -> None:
    assert fallback_chain("auto", ALL) == [Provider.TENSORRT, Provider.CUDA, Provider.CPU]
    assert fallback_chain("auto", {Provider.CUDA, Provider.CPU}) == [Provider.CUDA, Provider.CPU]
    assert fallback_chain("auto", {Provider.CPU}) == [Provider.CPU]
    assert fallback_chain("cuda", ALL) == [Provider.CUDA, Provider.CPU]
    # An explicit hint is tried even when discovery doubts it, so its failure is seen and recorded.
    assert fallback_chain("tensorrt", {Provider.CPU}) == [Provider.TENSORRT, Provider.CUDA, Provider.CPU]
    assert fallback_chain("auto", ALL, disabled={Provider.TENSORRT}) == [Provider.CUDA, Provider.CPU]
    assert fallback_chain("cpu", ALL, disabled={Provider.CPU}) == [Provider.CPU]
    with pytest.raises(ValueError, match="'gpu' is not a provider"):
        parse_hint("gpu", "--provider")


def test_cpu_sessions_take_their_thread_count_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CPU_THREADS_VARIABLE, raising=False)
    assert cpu_threads() is None
    default = session_options(Provider.CPU)
    assert default.intra_op_num_threads == 0  # ONNX Runtime's own choice: a thread per core
    with pytest.raises(RuntimeError, match="allow_spinning"):  # not set: ORT's default (spinning)
        default.get_session_config_entry("session.intra_op.allow_spinning")
    for unusable in ("0", "-2", "many", ""):
        monkeypatch.setenv(CPU_THREADS_VARIABLE, unusable)
        assert cpu_threads() is None and session_options(Provider.CPU).intra_op_num_threads == 0
    monkeypatch.setenv(CPU_THREADS_VARIABLE, "3")
    assert cpu_threads() == 3
    shared = session_options(Provider.CPU)
    assert shared.intra_op_num_threads == 3
    assert shared.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert session_options(Provider.CUDA).intra_op_num_threads == 1  # a GPU session keeps its one thread


def test_discovery_on_a_machine_without_a_gpu_build_says_why() -> None:
    statuses = discover()
    assert statuses[Provider.CPU].usable
    for provider in (Provider.CUDA, Provider.TENSORRT):
        assert not statuses[provider].usable
        assert "onnxruntime-gpu" in (statuses[provider].reason or "")


def test_settings_and_the_catalog_choose_the_hint(make_runtime: RuntimeFactory) -> None:
    runtime = make_runtime(
        InferenceSettings(
            provider="cuda", model_providers={"occluder": "cpu"}, model_precisions={"occluder": "fp32"}
        )
    )
    assert runtime.hint_for("inswapper_128") == "cuda"
    assert runtime.hint_for("occluder") == "cpu"
    assert runtime.hint_for("occluder", "tensorrt") == "tensorrt"
    assert runtime.precision_for("inswapper_128") == "fp16"
    assert runtime.precision_for("occluder") == "fp32"
    auto = make_runtime()
    assert auto.hint_for("inswapper_128") == CATALOG.get("inswapper_128").provider_hint


def test_engine_cache_folder_changes_with_every_part_of_its_key(tmp_path: Path) -> None:
    base = EngineKey("a" * 64, "sm_90", "trt10.9.0", "fp16")
    variants = [
        base,
        EngineKey("b" * 64, "sm_90", "trt10.9.0", "fp16"),
        EngineKey("a" * 64, "sm_89", "trt10.9.0", "fp16"),
        EngineKey("a" * 64, "sm_90", "trt10.16.1", "fp16"),
        EngineKey("a" * 64, "sm_90", "trt10.9.0", "fp32"),
    ]
    folders = {engine_cache_dir(tmp_path, key) for key in variants}
    assert len(folders) == len(variants)
    assert (engine_cache_dir(tmp_path, base) / "key.json").read_text().count("sm_90") == 1


def test_tensorrt_options_carry_precision_caches_and_profiles(tmp_path: Path) -> None:
    entry = CATALOG.get("scrfd_2.5g")  # input.1 is 1x3xheightxwidth
    options = provider_options(
        Provider.TENSORRT,
        entry,
        InferenceSettings(),
        precision="fp16",
        cuda_graph=False,
        engine_dir=tmp_path,
    )
    assert options["trt_fp16_enable"] is True
    assert options["trt_engine_cache_enable"] and options["trt_engine_cache_path"] == str(tmp_path)
    assert options["trt_timing_cache_enable"] and options["trt_timing_cache_path"] == str(tmp_path)
    assert options["trt_profile_min_shapes"] == "input.1:1x3x64x64"
    assert options["trt_profile_opt_shapes"] == "input.1:1x3x640x640"
    assert options["trt_profile_max_shapes"] == "input.1:1x3x1024x1024"
    batch = tensorrt_profiles(CATALOG.get("2d106det"), InferenceSettings())  # data is Nx3x192x192
    assert batch["trt_profile_max_shapes"] == "data:8x3x192x192"
    assert tensorrt_profiles(CATALOG.get("inswapper_128"), InferenceSettings()) == {}  # static shapes


def test_cuda_options_follow_settings() -> None:
    options = provider_options(
        Provider.CUDA,
        CATALOG.get("inswapper_128"),
        InferenceSettings(cudnn_conv_algo_search="heuristic", device_index=1),
        precision="fp32",
        cuda_graph=True,
        engine_dir=None,
    )
    assert options["cudnn_conv_algo_search"] == "HEURISTIC"
    assert options["device_id"] == "1" and options["enable_cuda_graph"] == "1"
    assert options["cudnn_conv_use_max_workspace"] == "1"
    assert "user_compute_stream" not in options  # ORT's own stream unless the model has one of ours


def test_cuda_options_cap_the_workspace_and_name_the_models_stream() -> None:
    options = provider_options(
        Provider.CUDA,
        CATALOG.get("inswapper_128"),
        InferenceSettings(cudnn_max_workspace=False),
        precision="fp16",
        cuda_graph=False,
        engine_dir=None,
        stream=0x7F00DEAD,
    )
    assert options["cudnn_conv_use_max_workspace"] == "0"
    assert options["has_user_compute_stream"] == "1"
    assert options["user_compute_stream"] == str(0x7F00DEAD)


def test_the_graph_matrix_keeps_results_by_key(tmp_path: Path) -> None:
    matrix = GraphMatrix(tmp_path / "cuda_graphs.json")
    cuda = graph_key("c" * 64, "sm_90", Provider.CUDA, "fp32", None)
    trt = graph_key("c" * 64, "sm_90", Provider.TENSORRT, "fp16", "10.9.0")
    other_gpu = graph_key("c" * 64, "sm_89", Provider.CUDA, "fp32", None)
    assert len({cuda.folder_name, trt.folder_name, other_gpu.folder_name}) == 3
    result = ProbeResult("inswapper_128", "cuda", "enabled", "replays match", 0.0, 1e-4)
    matrix.store(cuda, result)
    assert matrix.lookup(cuda) == result
    assert matrix.lookup(other_gpu) is None
    (tmp_path / "cuda_graphs.json").write_text("{not json")
    assert matrix.results() == {}  # unreadable: ignored (probed again), never a crash


def test_the_probe_skips_without_a_gpu(make_runtime: RuntimeFactory) -> None:
    runtime = make_runtime()
    spec = runtime.load_spec("inswapper_128", "fp32")
    result = probe(spec, Provider.CUDA)
    assert result.verdict == "skipped" and result.reason == "no CUDA GPU"
    assert spec.cuda_graph_providers == frozenset()
