"""CUDA-graph sessions keep one graph per input shape, batches padded to buckets: a face count that
changes mid-video lands on the graph of its bucket and gets exactly its own outputs.

The graph path runs here on a CUDA provider backed by ORT's CPU provider (which ignores the graph
annotations), so the bucketing, padding, per-shape buffers and cutting are the real code; the capture
itself is tested on the GPU (tests/gpu)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from app.core.settings import InferenceSettings
from app.inference.graph_runs import BATCH_BUCKETS, CAPTURE_RUNS, MAX_GRAPHS, bucket_for
from app.inference.loaded_model import LoadedModel
from app.inference.providers import Provider
from app.inference.runtime import InferenceRuntime
from tests.inference.conftest import plain_run
from tests.inference.rewrite_models import store_with
from tests.inference.test_rewrites import CUDA_ON_CPU, picture


@pytest.fixture
def graphed(tmp_path: Path):  # type: ignore[no-untyped-def]
    store = store_with(tmp_path / "models", "plain")
    runtime = InferenceRuntime(
        store, InferenceSettings(precision="fp32"), cache_root=tmp_path / "cache", backends=CUDA_ON_CPU
    )
    spec = runtime.load_spec("rewrite_plain", "fp32")  # its batched variant: surgery passed
    model = LoadedModel(replace(spec, cuda_graph_providers=frozenset({Provider.CUDA})), Provider.CUDA)
    yield model, spec.model.path
    model.close()
    runtime.close()


def test_buckets() -> None:
    assert [bucket_for(n) for n in (1, 2, 3, 4, 5, 8, 9)] == [1, 2, 4, 4, 8, 8, None]
    assert BATCH_BUCKETS[-1] == 8


def test_a_face_count_that_changes_mid_video_replays_the_graph_of_its_bucket(graphed) -> None:  # type: ignore[no-untyped-def]
    model, original = graphed
    assert model.cuda_graph
    model.capture_graphs({"x": picture(seed=0)})
    runner = model._graphs
    assert runner is not None and runner.batch_symbol == "batch"
    for frame, faces in enumerate([1, 3, 2, 3, 5, 1, 4, 8, 9, 2]):
        x = picture(seed=frame, batch=faces)
        y = model.run({"x": x})["y"]
        assert y.shape[0] == faces
        for item in range(faces):
            alone = plain_run(original, {"x": x[item : item + 1]})["y"]
            np.testing.assert_allclose(y[item : item + 1].numpy(), alone, rtol=1e-5, atol=1e-6)
    # One graph per bucket, captured before the first frame; 9 faces replayed 8, then 1.
    assert sorted((shape[0][0], graph_id) for shape, graph_id in runner.graph_ids.items()) == [
        (1, 1),
        (2, 2),
        (4, 3),
        (8, 4),
    ]


def test_outputs_are_copies_the_next_replay_cannot_overwrite(graphed) -> None:  # type: ignore[no-untyped-def]
    model, _ = graphed
    model.capture_graphs({"x": picture(seed=0)})
    first = model.run({"x": picture(seed=1)})["y"]
    kept = first.clone()
    model.run({"x": picture(seed=2)})
    assert (first == kept).all()


def test_past_the_graph_limit_shapes_run_without_a_graph(graphed, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    model, original = graphed
    monkeypatch.setattr("app.inference.graph_runs.MAX_GRAPHS", 2)
    model.capture_graphs({"x": picture(seed=0)})
    for faces in (1, 2, 4, 8):
        x = picture(seed=faces, batch=faces)
        y = model.run({"x": x})["y"]
        np.testing.assert_allclose(
            y[-1:].numpy(), plain_run(original, {"x": x[-1:]})["y"], rtol=1e-5, atol=1e-6
        )
    assert len(model._graphs.graph_ids) == 2 < MAX_GRAPHS  # type: ignore[union-attr]


def test_graphs_are_captured_when_asked_for_and_never_mid_run(graphed) -> None:  # type: ignore[no-untyped-def]
    """ORT captures in CUDA's global mode: a capture while the pipeline's other threads use the GPU
    fails both (seen on the H200). So all graphs are captured before a job starts, none later."""
    model, original = graphed
    model.run({"x": picture(seed=0, batch=2)})
    assert model._graphs.graph_ids == {}  # an ordinary run captures nothing
    model.capture_graphs({"x": picture(seed=0, batch=3)})
    runner = model._graphs
    assert sorted(shape[0][0] for shape in runner.graph_ids) == list(BATCH_BUCKETS)
    captured = dict(runner.graph_ids)
    for faces in (1, 3, 8, 9):  # buckets replay their graphs; 9 replays 8, then 1
        x = picture(seed=faces, batch=faces)
        y = model.run({"x": x})["y"]
        np.testing.assert_allclose(
            y[-1:].numpy(), plain_run(original, {"x": x[-1:]})["y"], rtol=1e-5, atol=1e-6
        )
    assert runner.graph_ids == captured


def test_a_runner_runs_a_shape_it_has_no_graph_for_without_capturing(
    graphed, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    model, original = graphed
    runner = model._graphs
    with monkeypatch.context() as patch:
        patch.setattr(runner, "buckets", (1, 2))
        model.capture_graphs({"x": picture(seed=0)})
    assert sorted(shape[0][0] for shape in runner.graph_ids) == [1, 2]
    x = picture(seed=3, batch=3)  # bucket 4: never captured, and not captured now
    y = model.run({"x": x})["y"]
    np.testing.assert_allclose(y.numpy()[2:], plain_run(original, {"x": x[2:]})["y"], rtol=1e-5, atol=1e-6)
    assert sorted(shape[0][0] for shape in runner.graph_ids) == [1, 2]


def test_every_capture_and_replay_runs_on_the_models_own_thread(graphed) -> None:  # type: ignore[no-untyped-def]
    """ORT keeps CUDA graphs per calling thread: a graph captured in preload does not exist for a
    worker, whose second call would capture again beside the pipeline's kernels (seen on the H200).
    So captures (preload's thread) and replays (any worker's) all run on the runner's one thread."""
    model, original = graphed
    session = model.ort_session
    real_run = session.run_with_iobinding
    threads: list[tuple[int, str]] = []

    def recording_run(binding, options):  # type: ignore[no-untyped-def]
        graph_id = options.get_run_config_entry("gpu_graph_id") if options is not None else None
        threads.append((threading.get_ident(), graph_id))
        return real_run(binding, options)

    session.run_with_iobinding = recording_run
    model.capture_graphs({"x": picture(seed=0)})
    runner = model._graphs
    replay_thread = runner.replay_thread
    assert replay_thread != threading.get_ident()

    def work(seed: int) -> None:
        for faces in (1, 2, 3, 9):
            x = picture(seed=seed + faces, batch=faces)
            y = model.run({"x": x})["y"]
            np.testing.assert_allclose(
                y[-1:].numpy(), plain_run(original, {"x": x[-1:]})["y"], rtol=1e-5, atol=1e-6
            )

    with ThreadPoolExecutor(max_workers=3) as workers:
        list(workers.map(work, range(3)))
    graphed_runs = [ident for ident, graph_id in threads if graph_id != "-1"]
    plain_runs = [ident for ident, graph_id in threads if graph_id == "-1"]
    # The captures, then per worker 1, 2 and 3 faces (three replays) and 9 faces (8, then 1).
    assert len(graphed_runs) == len(BATCH_BUCKETS) * CAPTURE_RUNS + 3 * 5
    assert set(graphed_runs) == {replay_thread} and plain_runs == []


def test_closing_a_model_stops_its_replay_thread(graphed) -> None:  # type: ignore[no-untyped-def]
    model, _ = graphed
    model.capture_graphs({"x": picture(seed=0)})
    names = {t.name for t in threading.enumerate()}
    assert any(name.startswith("graphs-") for name in names)
    before = threading.active_count()
    model.close()
    assert threading.active_count() == before - 1
    assert model._graphs is None


def test_a_smaller_largest_bucket_captures_fewer_graphs_and_replays_big_batches_in_pieces(
    tmp_path: Path,
) -> None:
    """max_graph_batch 4: graphs for 1, 2 and 4 only (each bucket's graph holds its own activations in
    VRAM); 9 faces replay as 4, 4 and 1, with each face's own outputs, and nothing runs without a graph."""
    store = store_with(tmp_path / "models", "plain")
    settings = InferenceSettings(precision="fp32", max_graph_batch=4)
    runtime = InferenceRuntime(store, settings, cache_root=tmp_path / "cache", backends=CUDA_ON_CPU)
    spec = runtime.load_spec("rewrite_plain", "fp32")
    model = LoadedModel(replace(spec, cuda_graph_providers=frozenset({Provider.CUDA})), Provider.CUDA)
    try:
        assert runtime.batch_limit == 4
        model.capture_graphs({"x": picture(seed=0)})
        runner = model._graphs
        assert runner is not None and sorted(shape[0][0] for shape in runner.graph_ids) == [1, 2, 4]
        graph_ids: list[str] = []
        real_run = model.ort_session.run_with_iobinding

        def recording_run(binding, options):  # type: ignore[no-untyped-def]
            graph_ids.append(options.get_run_config_entry("gpu_graph_id"))
            return real_run(binding, options)

        model.ort_session.run_with_iobinding = recording_run
        x = picture(seed=5, batch=9)
        y = model.run({"x": x})["y"]
        assert y.shape[0] == 9 and len(graph_ids) == 3 and "-1" not in graph_ids
        for item in range(9):
            alone = plain_run(spec.model.path, {"x": x[item : item + 1]})["y"]
            np.testing.assert_allclose(y[item : item + 1].numpy(), alone, rtol=1e-5, atol=1e-6)
    finally:
        model.close()
        runtime.close()
