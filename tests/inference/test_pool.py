"""The pool reuses sessions, evicts least recently used ones by count and by bytes, frees what it
evicts, never closes a session under its user, and serves many threads correctly."""

from __future__ import annotations

import gc
import threading
import time
import weakref

import numpy as np
import torch

from app.core.settings import InferenceSettings
from app.inference.pool import PoolLimits
from app.inference.providers import Provider
from tests.inference.conftest import RuntimeFactory, plain_run
from tests.support.threads import run_together

MODELS = ["inswapper_128", "occluder", "arcface_w600k_r50"]


def test_a_session_is_reused(make_runtime: RuntimeFactory) -> None:
    runtime = make_runtime()
    with runtime.session("occluder") as first:
        pass
    with runtime.session("occluder") as second:
        pass
    assert first is second
    assert [k.model_id for k in runtime.pool.session_keys()] == ["occluder"]


def test_is_loaded_says_whether_the_pool_holds_a_model_on_any_provider(make_runtime: RuntimeFactory) -> None:
    from app.inference.faults import Fault, FaultPlan

    runtime = make_runtime(
        backends={Provider.CUDA: "CPUExecutionProvider"}, faults=FaultPlan([Fault(Provider.CUDA, "run")])
    )
    assert not runtime.is_loaded("occluder")
    with runtime.session("occluder", provider="cuda") as session:
        assert runtime.is_loaded("occluder")  # while leased, too
        session.run(session.example_inputs())  # falls back: now filed under the CPU
    assert runtime.is_loaded("occluder") and not runtime.is_loaded("inswapper_128")
    runtime.pool.discard("occluder")
    assert not runtime.is_loaded("occluder")


def test_eviction_by_count_takes_the_least_recently_used(make_runtime: RuntimeFactory) -> None:
    runtime = make_runtime(InferenceSettings(max_sessions=2))
    sessions = {}
    for model_id in MODELS[:2]:
        with runtime.session(model_id) as session:
            sessions[model_id] = session
    with runtime.session(MODELS[0]):
        pass  # now MODELS[1] is the least recently used
    ort_session = weakref.ref(sessions[MODELS[1]]._loaded._session)
    with runtime.session(MODELS[2]):
        pass
    assert sorted(k.model_id for k in runtime.pool.session_keys()) == sorted([MODELS[0], MODELS[2]])
    assert sessions[MODELS[1]].closed and not sessions[MODELS[0]].closed
    gc.collect()
    assert ort_session() is None  # the ORT session (and its memory) is gone
    assert runtime.pool.evictions == 1


def test_eviction_by_byte_budget(make_runtime: RuntimeFactory) -> None:
    probe = make_runtime()
    sizes = {}
    for model_id in MODELS:
        with probe.session(model_id) as session:
            sizes[model_id] = session.footprint_bytes
    budget = sizes[MODELS[1]] + sizes[MODELS[2]]  # room for the last two only
    assert sizes[MODELS[0]] + sizes[MODELS[1]] + sizes[MODELS[2]] > budget
    runtime = make_runtime()
    runtime.pool.limits = PoolLimits(max_sessions=8, host_budget_bytes=budget)  # finer than settings' MB
    for model_id in MODELS:
        with runtime.session(model_id):
            pass
    assert [k.model_id for k in runtime.pool.session_keys()] == MODELS[1:]
    assert runtime.pool.bytes_in_use(on_gpu=False) <= budget


def test_a_session_evicted_while_in_use_is_closed_when_released(make_runtime: RuntimeFactory) -> None:
    runtime = make_runtime(InferenceSettings(max_sessions=1))
    with runtime.session(MODELS[0]) as held:
        with runtime.session(MODELS[1]):
            pass
        assert not held.closed  # evicted from the pool, but still in use here
        held.run(held.example_inputs())
    assert held.closed
    assert [k.model_id for k in runtime.pool.session_keys()] == [MODELS[1]]


def test_many_threads_on_one_model_load_it_once_and_get_correct_results(make_runtime: RuntimeFactory) -> None:
    runtime = make_runtime()
    loads = []
    original = runtime._load

    def counting_load(key):  # type: ignore[no-untyped-def]
        loads.append(key)
        return original(key)

    runtime.pool._loader = counting_load
    feeds = [{"target": torch.rand(1, 3, 128, 128), "source": torch.rand(1, 512)} for _ in range(6)]

    def work(worker: int) -> list[torch.Tensor]:
        rounds = [(worker + r) % len(feeds) for r in range(5)]
        return [runtime.run("inswapper_128", feeds[index])["output"] for index in rounds]

    results = run_together(6, work)
    assert len(loads) == 1
    path = runtime.model_file("inswapper_128").path
    references = [plain_run(path, f)["output"] for f in feeds]
    for worker, values in results.items():
        for round_, value in enumerate(values):
            np.testing.assert_allclose(value.numpy(), references[(worker + round_) % len(feeds)], rtol=1e-6)


def test_a_session_that_fell_back_is_filed_under_its_new_provider(make_runtime: RuntimeFactory) -> None:
    from app.inference.faults import Fault, FaultPlan

    runtime = make_runtime(
        backends={Provider.CUDA: "CPUExecutionProvider"}, faults=FaultPlan([Fault(Provider.CUDA, "run")])
    )
    with runtime.session("occluder", provider="cuda") as session:
        session.run(session.example_inputs())
    assert [k.provider for k in runtime.pool.session_keys()] == [Provider.CPU]
    with runtime.session("occluder", provider="cuda") as again:
        assert again is session  # the chain now starts at the CPU: same key, same session


def test_preload_loads_every_model_side_by_side_and_leaves_missing_ones_for_later(
    make_runtime: RuntimeFactory,
) -> None:
    runtime = make_runtime()
    loading: list[str] = []
    loaded_together = threading.Event()
    original = runtime.pool._loader

    def slow_loader(key):  # type: ignore[no-untyped-def]
        loading.append(key.model_id)
        if len(loading) == 2:
            loaded_together.set()
        loaded_together.wait(timeout=10)  # each load waits for the other: only parallel loads finish fast
        return original(key)

    runtime.pool._loader = slow_loader
    started = time.perf_counter()
    runtime.preload(["occluder", "inswapper_128", "occluder", "not_in_the_catalog"])
    assert time.perf_counter() - started < 8
    assert sorted(k.model_id for k in runtime.pool.session_keys()) == ["inswapper_128", "occluder"]
    runtime.preload(["gfpgan_1.4"])  # no stand-in for it here: left for its first real use
    assert "gfpgan_1.4" not in [k.model_id for k in runtime.pool.session_keys()]
