"""fp16 conversion and its parity gate, and batch-axis surgery, on real ORT sessions.

CUDA is backed by ONNX Runtime's CPU provider here (this machine has no GPU), so the whole path runs for
real: the rewrite is written, both files are loaded, the gate compares them on realistic inputs, the
verdict is stored, and the session for "CUDA" loads the rewritten file. tests/gpu repeats it on a GPU.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from app.core.settings import InferenceSettings
from app.environment import environment_report
from app.inference.parity import InputSpec, realistic_inputs
from app.inference.providers import Provider
from app.inference.rewrites import FOLDER, VERDICT_FILE
from app.inference.runtime import InferenceRuntime
from tests.inference.conftest import plain_run
from tests.inference.rewrite_models import SIDE, store_with

CUDA_ON_CPU = {Provider.CUDA: "CPUExecutionProvider"}


@pytest.fixture
def runtime_for(tmp_path: Path):  # type: ignore[no-untyped-def]
    made: list[InferenceRuntime] = []

    def build(*kinds: str, **settings: object) -> InferenceRuntime:
        store = store_with(tmp_path / "models", *kinds)
        runtime = InferenceRuntime(
            store, InferenceSettings(**settings), cache_root=tmp_path / "cache", backends=CUDA_ON_CPU
        )
        made.append(runtime)
        return runtime

    yield build
    for runtime in made:
        runtime.close()


def verdicts(runtime: InferenceRuntime) -> dict[str, dict[str, object]]:
    raw = json.loads((runtime.cache_root / FOLDER / VERDICT_FILE).read_text())
    return {f"{v['model_id']}:{v['kind']}": v for v in raw["verdicts"].values()}


def picture(seed: int, batch: int = 1) -> torch.Tensor:
    entry_spec = [InputSpec("x", (batch, 3, SIDE, SIDE), torch.float32)]
    from tests.inference.rewrite_models import build, entry

    return realistic_inputs(entry("plain", build("plain")), entry_spec, seed)["x"]


def test_fp16_rewrite_passes_its_gate_and_the_cuda_provider_runs_it(runtime_for) -> None:  # type: ignore[no-untyped-def]
    runtime = runtime_for("plain")
    spec = runtime.load_spec("rewrite_plain", "fp16")
    variant = spec.variant(Provider.CUDA)
    assert variant is not None and variant.precision == "fp16" and variant.tag == "batch+fp16"
    stored = onnx.load(str(variant.path))
    assert {i.data_type for i in stored.graph.initializer if i.name.startswith("w")} == {
        onnx.TensorProto.FLOAT16
    }
    assert stored.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # fp32 at the edges
    cpu = spec.variant(Provider.CPU)
    assert cpu is not None and cpu.precision == "fp32"  # the CPU never gets the fp16 file
    verdict = verdicts(runtime)["rewrite_plain:fp16"]
    assert verdict["passed"] and float(verdict["cosine_min"]) >= 0.99  # type: ignore[arg-type]

    x = picture(seed=11)
    with runtime.session("rewrite_plain", provider="cuda") as session:
        assert session.provider is Provider.CUDA
        got = session.run({"x": x})["y"].numpy()
    want = plain_run(spec.model.path, {"x": x})["y"]
    cosine = float((got * want).sum() / np.linalg.norm(got) / np.linalg.norm(want))
    assert cosine > 0.999
    assert not np.array_equal(got, want)  # it really ran in fp16


def test_a_model_that_fails_the_fp16_gate_stays_fp32_and_is_not_gated_again(runtime_for) -> None:  # type: ignore[no-untyped-def]
    runtime = runtime_for("fragile")
    spec = runtime.load_spec("rewrite_fragile", "fp16")
    variant = spec.variant(Provider.CUDA)
    assert variant is not None and variant.precision == "fp32" and variant.tag == "batch"
    verdict = verdicts(runtime)["rewrite_fragile:fp16"]
    assert not verdict["passed"] and "differs from the original" in str(verdict["reason"])
    assert not list((runtime.cache_root / FOLDER).glob("*ortfp16*.onnx"))  # failed files are not kept
    before = (runtime.cache_root / FOLDER / VERDICT_FILE).read_text()

    again = runtime_for("fragile")  # a later launch: same cache, verdicts read, no gate run
    assert again.load_spec("rewrite_fragile", "fp16").variant(Provider.CUDA) == variant
    assert (again.cache_root / FOLDER / VERDICT_FILE).read_text() == before

    report = environment_report(runtime.store, runtime.cache_root, probe=False)  # check-env says why
    [said] = [line for line in report["summary"] if "stay fp32" in line]
    assert "rewrite_fragile" in said and "differs from the original" in said
    assert {(r["kind"], r["used"]) for r in report["rewrites"]} == {("batch", True), ("fp16", False)}


def test_fp32_or_a_cpu_only_machine_gets_no_fp16_file(tmp_path: Path) -> None:
    store = store_with(tmp_path / "models", "plain")
    fp32 = InferenceRuntime(
        store, InferenceSettings(precision="fp32"), cache_root=tmp_path / "a", backends=CUDA_ON_CPU
    )
    variant = fp32.load_spec("rewrite_plain", "fp32").variant(Provider.CUDA)
    assert variant is not None and variant.precision == "fp32"
    cpu_only = InferenceRuntime(store, InferenceSettings(), cache_root=tmp_path / "b")
    assert cpu_only.load_spec("rewrite_plain", "fp16").variants == {}  # no GPU: no rewrites at all
    assert not cpu_only.takes_a_batch("rewrite_plain")


def test_batch_axis_surgery_gives_the_same_outputs_as_batch_1(runtime_for) -> None:  # type: ignore[no-untyped-def]
    runtime = runtime_for("plain", precision="fp32")
    assert runtime.takes_a_batch("rewrite_plain")
    spec = runtime.load_spec("rewrite_plain", "fp32")
    variant = spec.variant(Provider.CUDA)
    assert variant is not None and variant.batched
    batched_file = onnx.load(str(variant.path))
    assert batched_file.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    x = picture(seed=3, batch=5)
    with runtime.session("rewrite_plain", provider="cuda") as session:
        together = session.run({"x": x})["y"]
    assert together.shape == (5, 8, SIDE, SIDE)
    for item in range(5):
        alone = plain_run(spec.model.path, {"x": x[item : item + 1]})["y"]
        np.testing.assert_allclose(together[item : item + 1].numpy(), alone, rtol=1e-5, atol=1e-6)
    assert verdicts(runtime)["rewrite_plain:batch"]["passed"]


def test_a_model_that_bakes_batch_1_in_stays_at_batch_1_and_says_why(runtime_for) -> None:  # type: ignore[no-untyped-def]
    runtime = runtime_for("baked", precision="fp32")
    assert not runtime.takes_a_batch("rewrite_baked")
    assert runtime.load_spec("rewrite_baked", "fp32").variants == {}
    verdict = verdicts(runtime)["rewrite_baked:batch"]
    assert not verdict["passed"] and "does not run" in str(verdict["reason"])
    with runtime.session("rewrite_baked", provider="cuda") as session:  # the original still serves
        assert session.run({"x": picture(seed=1)})["y"].shape == (1, 9, SIDE, SIDE)


def test_batch_axis_off_leaves_the_file_alone(runtime_for) -> None:  # type: ignore[no-untyped-def]
    runtime = runtime_for("plain", batch_axis="off", precision="fp32")
    assert runtime.load_spec("rewrite_plain", "fp32").variants == {}
    assert not runtime.takes_a_batch("rewrite_plain")


def _boobytrapped(*args: object, **kwargs: object) -> None:
    raise RuntimeError("rewritten in the loading process")


def test_a_jobs_rewrites_are_written_by_builder_processes_before_the_gates(
    runtime_for, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """preload hands the large models' rewrites to builder processes: with this process's own
    builders made to fail, the batch axis and fp16 still pass their gates, from the builders' files,
    and those files are the bytes an in-process rewrite writes."""
    from app.inference import batch_axis, fp16, rewrites

    expected = runtime_for("plain")  # rewritten in-process first (the model is below the threshold)
    reference = expected.load_spec("rewrite_plain", "fp16").variant(Provider.CUDA)
    assert reference is not None and reference.tag == "batch+fp16"

    monkeypatch.setattr(rewrites, "PREBUILD_MIN_BYTES", 0)
    monkeypatch.setattr(batch_axis, "make_batch_dynamic", _boobytrapped)
    monkeypatch.setattr(fp16, "convert", _boobytrapped)
    store = store_with(tmp_path / "models-2", "plain")
    runtime = InferenceRuntime(
        store, InferenceSettings(), cache_root=tmp_path / "cache-2", backends=CUDA_ON_CPU
    )
    try:
        runtime.preload(["rewrite_plain"])
        variant = runtime.load_spec("rewrite_plain", "fp16").variant(Provider.CUDA)
        assert variant is not None and variant.tag == "batch+fp16"
        assert variant.sha256 == reference.sha256
        assert verdicts(runtime)["rewrite_plain:batch"]["passed"]
        assert verdicts(runtime)["rewrite_plain:fp16"]["passed"]
    finally:
        runtime.close()


def test_a_builder_that_failed_leaves_the_rewrite_to_the_loading_process(tmp_path: Path) -> None:
    from concurrent.futures import Future

    from app.inference.rewrites import ModelRewrites

    rewrites = ModelRewrites(tmp_path)
    died: Future[dict[str, str | None]] = Future()
    died.set_exception(OSError("builder killed"))
    rewrites._prebuilding["m"] = died
    assert rewrites._prebuilt("m", tmp_path / "x.onnx") == (False, None)
    refused: Future[dict[str, str | None]] = Future()
    refused.set_result({str(tmp_path / "x.onnx"): "no batch axis"})
    rewrites._prebuilding["m"] = refused
    assert rewrites._prebuilt("m", tmp_path / "x.onnx") == (True, "no batch axis")
    assert rewrites._prebuilt("m", tmp_path / "other.onnx") == (False, None)


def test_a_model_whose_builder_is_still_writing_does_not_hold_up_the_others(runtime_for) -> None:  # type: ignore[no-untyped-def]
    """A load waits for its own builder before it takes the GPU set-up lock: with the 'baked' model's
    builder still running, the 'plain' model loads (and is gated) meanwhile; once the builder is done,
    the baked one loads too."""
    import threading
    from concurrent.futures import Future

    runtime = runtime_for("plain", "baked")
    writing: Future[dict[str, str | None]] = Future()  # a builder process that has not finished
    runtime.rewrites._prebuilding["rewrite_baked"] = writing
    slow = threading.Thread(target=runtime.preload, args=(["rewrite_baked"],), daemon=True)
    slow.start()
    quick = threading.Thread(target=runtime.preload, args=(["rewrite_plain"],), daemon=True)
    quick.start()
    quick.join(30)
    assert not quick.is_alive() and runtime.is_loaded("rewrite_plain")
    assert slow.is_alive() and not runtime.is_loaded("rewrite_baked")
    writing.set_result({})  # it wrote nothing this process can use: the rewrite is made here
    slow.join(120)
    assert not slow.is_alive() and runtime.is_loaded("rewrite_baked")


def test_a_deferring_runtime_runs_the_original_while_its_rewrite_is_written_and_judges_it_after(
    tmp_path: Path,
) -> None:
    """`defer_rewrites` (the swap command's runtime): a model whose builder is still writing loads from
    its original file at once, batch 1 and fp32; `settle_rewrites` then judges the rewrites, and the
    model's next load takes them."""
    from concurrent.futures import Future

    store = store_with(tmp_path / "models", "plain")
    runtime = InferenceRuntime(
        store, InferenceSettings(), cache_root=tmp_path / "cache", backends=CUDA_ON_CPU, defer_rewrites=True
    )
    try:
        precision = runtime.precision_for("rewrite_plain")
        writing: Future[dict[str, str | None]] = Future()  # a builder process that has not finished
        runtime.rewrites._prebuilding["rewrite_plain"] = writing
        runtime.preload(["rewrite_plain"])  # returns without waiting for the builder
        assert runtime.deferred_models() == ["rewrite_plain"]
        assert runtime.load_spec("rewrite_plain", precision).variant(Provider.CUDA) is None
        assert not runtime.takes_a_batch("rewrite_plain")
        assert runtime.run("rewrite_plain", {"x": picture(1)})["y"].shape == (1, 8, SIDE, SIDE)
        assert not (runtime.cache_root / FOLDER / VERDICT_FILE).exists()  # nothing judged yet

        writing.set_result({})  # it wrote nothing this process can use: the rewrite is made here
        runtime.settle_rewrites()
        assert runtime.deferred_models() == []
        variant = runtime.load_spec("rewrite_plain", precision).variant(Provider.CUDA)
        assert variant is not None and variant.batched and runtime.takes_a_batch("rewrite_plain")
        assert verdicts(runtime)["rewrite_plain:batch"]["passed"]
        assert runtime.run("rewrite_plain", {"x": picture(2, batch=3)})["y"].shape == (3, 8, SIDE, SIDE)
    finally:
        runtime.close()


def test_a_deferring_runtime_leaves_a_small_models_rewrite_to_after_the_job(tmp_path: Path) -> None:
    """No builder (a model below the builders' size): the rewrite and its gate still wait for
    settle_rewrites, and a second launch finds them judged and loads the rewrite at once."""
    store = store_with(tmp_path / "models", "plain")

    def launch() -> InferenceRuntime:
        cache = tmp_path / "cache"
        return InferenceRuntime(
            store, InferenceSettings(), cache_root=cache, backends=CUDA_ON_CPU, defer_rewrites=True
        )

    first = launch()
    try:
        first.preload(["rewrite_plain"])
        assert first.deferred_models() == ["rewrite_plain"] and not first.takes_a_batch("rewrite_plain")
        first.settle_rewrites()
    finally:
        first.close()
    second = launch()
    try:
        second.preload(["rewrite_plain"])
        assert second.deferred_models() == [] and second.takes_a_batch("rewrite_plain")
    finally:
        second.close()


def test_a_runtime_that_does_not_defer_waits_for_the_builder(runtime_for) -> None:  # type: ignore[no-untyped-def]
    """The default (the studio's runtime): the load waits for the builder, then takes the rewrite."""
    import threading
    from concurrent.futures import Future

    runtime = runtime_for("plain")
    writing: Future[dict[str, str | None]] = Future()
    runtime.rewrites._prebuilding["rewrite_plain"] = writing
    loading = threading.Thread(target=runtime.preload, args=(["rewrite_plain"],), daemon=True)
    loading.start()
    loading.join(0.5)
    assert loading.is_alive() and runtime.deferred_models() == []
    writing.set_result({})
    loading.join(120)
    assert not loading.is_alive()
    assert runtime.takes_a_batch("rewrite_plain")


def test_asking_whether_a_model_takes_a_batch_while_its_builder_writes_holds_up_no_other_load(
    runtime_for,
) -> None:  # type: ignore[no-untyped-def]
    """The studio's previewer asks `takes_a_batch` before any load: that wait for the builder happens
    outside the runtime's spec lock, so another model's preload goes on meanwhile."""
    import threading
    from concurrent.futures import Future

    runtime = runtime_for("plain", "baked")
    writing: Future[dict[str, str | None]] = Future()
    runtime.rewrites._prebuilding["rewrite_baked"] = writing
    asking = threading.Thread(target=runtime.takes_a_batch, args=("rewrite_baked",), daemon=True)
    asking.start()
    asking.join(0.5)
    quick = threading.Thread(target=runtime.preload, args=(["rewrite_plain"],), daemon=True)
    quick.start()
    quick.join(30)
    finished = not quick.is_alive()
    writing.set_result({})
    asking.join(120)
    assert finished and runtime.is_loaded("rewrite_plain") and not asking.is_alive()
