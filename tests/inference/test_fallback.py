"""Fallback at load and at run time ends in the correct result from the next provider, recorded once.

This machine has only ONNX Runtime's CPU provider. Asking for CUDA is a real load failure here (the
build has no CUDA provider). For a provider that loads and then fails mid-run, CUDA's sessions are
backed by the CPU provider (a stand-in CUDA) and a fault plan makes its runs raise; everything after the
raise (disable, reload on the next provider, re-run, record) is the real path. The GPU tests
(tests/gpu) do the same on real CUDA and TensorRT.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from app.core.settings import InferenceSettings
from app.inference.errors import InferenceError
from app.inference.fallbacks import FALLBACK_FILE, FallbackLog
from app.inference.faults import Fault, FaultPlan, FaultPlanError
from app.inference.providers import Provider
from tests.inference.conftest import RuntimeFactory, plain_run
from tests.support.threads import run_together

CUDA_ON_CPU = {Provider.CUDA: "CPUExecutionProvider"}
NO_WARMUP = InferenceSettings(warmup_on_load=False)  # so the first run is the caller's


def test_a_provider_that_fails_to_load_falls_back_with_its_reason(make_runtime: RuntimeFactory) -> None:
    runtime = make_runtime()
    with runtime.session("inswapper_128", provider="cuda") as session:
        feeds = session.example_inputs(seed=1)
        out = session.run(feeds)
        assert session.provider is Provider.CPU
    np.testing.assert_allclose(
        out["output"].numpy(), plain_run(session.model.path, feeds)["output"], rtol=1e-6
    )
    [event] = runtime.fallbacks.events()
    assert (event.source, event.target, event.phase) == (Provider.CUDA, Provider.CPU, "load")
    assert "no CUDA provider" in event.reason


def test_an_injected_load_fault_falls_back_once(make_runtime: RuntimeFactory) -> None:
    runtime = make_runtime(backends=CUDA_ON_CPU, faults=FaultPlan([Fault(Provider.CUDA, "load")]))
    for _ in range(3):
        with runtime.session("occluder", provider="cuda") as session:
            session.run(session.example_inputs())
            assert session.provider is Provider.CPU
    assert [(e.source, e.phase) for e in runtime.fallbacks.events()] == [(Provider.CUDA, "load")]


def test_a_provider_that_raises_at_run_time_is_replaced_and_the_same_inputs_rerun(
    make_runtime: RuntimeFactory,
) -> None:
    runtime = make_runtime(NO_WARMUP, backends=CUDA_ON_CPU, faults=FaultPlan([Fault(Provider.CUDA, "run")]))
    with runtime.session("inswapper_128", provider="cuda") as session:
        assert session.provider is Provider.CUDA  # it loaded: the failure comes at run time
        feeds = session.example_inputs(seed=2)
        out = session.run(feeds)
        assert session.provider is Provider.CPU
        again = session.run(feeds)
    reference = plain_run(session.model.path, feeds)["output"]
    np.testing.assert_allclose(out["output"].numpy(), reference, rtol=1e-6)
    assert torch.equal(out["output"], again["output"])
    [event] = runtime.fallbacks.events()
    assert (event.source, event.target, event.phase) == (Provider.CUDA, Provider.CPU, "run")
    assert "injected run fault" in event.reason
    # The provider stays disabled for this model: a new session starts on the CPU, no new event.
    runtime.pool.clear()
    with runtime.session("inswapper_128", provider="cuda") as session:
        assert session.provider is Provider.CPU
    assert len(runtime.fallbacks.events()) == 1


def test_warmup_on_load_meets_a_run_failure_before_the_first_frame(make_runtime: RuntimeFactory) -> None:
    runtime = make_runtime(backends=CUDA_ON_CPU, faults=FaultPlan([Fault(Provider.CUDA, "run")]))
    with runtime.session("occluder", provider="cuda") as session:
        assert session.first_run_ms is not None
        assert session.provider is Provider.CPU  # already moved, during warmup
        session.run(session.example_inputs(seed=1))
    [event] = runtime.fallbacks.events()
    assert (event.source, event.phase) == (Provider.CUDA, "run")


def test_threads_hitting_the_same_failure_record_it_once(make_runtime: RuntimeFactory) -> None:
    runtime = make_runtime(NO_WARMUP, backends=CUDA_ON_CPU, faults=FaultPlan([Fault(Provider.CUDA, "run")]))
    with runtime.session("occluder", provider="cuda") as session:
        feeds = {i: session.example_inputs(seed=i) for i in range(8)}
        results = run_together(8, lambda i: session.run(feeds[i])["output"])
    for index, value in results.items():
        reference = plain_run(session.model.path, feeds[index])["output"]
        np.testing.assert_allclose(value.numpy(), reference, rtol=1e-6)
    assert len(runtime.fallbacks.events()) == 1


def test_nothing_left_is_an_error_naming_the_file(make_runtime: RuntimeFactory) -> None:
    runtime = make_runtime(faults=FaultPlan([Fault(Provider.CPU, "load")]))
    with (
        pytest.raises(
            InferenceError, match=r"occluder.onnx.*could not be loaded on any provider.*CPU: injected"
        ),
        runtime.session("occluder"),
    ):
        pass


def test_fallbacks_are_kept_on_disk_for_check_env(make_runtime: RuntimeFactory, tmp_path: Path) -> None:
    runtime = make_runtime(backends=CUDA_ON_CPU, faults=FaultPlan([Fault(Provider.CUDA, "run", "occluder")]))
    with runtime.session("occluder", provider="cuda") as session:
        session.run(session.example_inputs())
    path = runtime.cache_root / FALLBACK_FILE
    with path.open("a", encoding="utf-8") as handle:
        handle.write('{"model_id": "cut mid-wri')  # a crash mid-write leaves a partial line
    [event] = FallbackLog(path).history()
    assert event.model_id == "occluder" and event.sentence().startswith("occluder: CUDA failed while running")


def test_fault_plans_are_parsed_strictly() -> None:
    plan = FaultPlan.parse("tensorrt:load, cuda:run:inswapper_128")
    assert plan.faults == [Fault(Provider.TENSORRT, "load"), Fault(Provider.CUDA, "run", "inswapper_128")]
    with pytest.raises(FaultPlanError, match="'gpu' is not a provider"):
        FaultPlan.parse("gpu:run")
    with pytest.raises(FaultPlanError, match=r"'cuda:later' is not PROVIDER:load\|run"):
        FaultPlan.parse("cuda:later")
