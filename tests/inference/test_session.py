"""Sessions bind torch tensors by catalog name and give the same numbers as ORT's plain run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from app.inference.errors import ModelFormatError, ModelInputError, ModelNotReadyError
from app.inference.providers import Provider
from app.models.catalog import TensorSpec, load_catalog
from tests.inference.conftest import STANDIN_IDS, RuntimeFactory, plain_run, store_for


@pytest.mark.parametrize("model_id", STANDIN_IDS)
def test_io_binding_equals_a_plain_run(model_id: str, make_runtime: RuntimeFactory) -> None:
    runtime = make_runtime()
    with runtime.session(model_id) as session:
        assert session.provider is Provider.CPU
        feeds = session.example_inputs(seed=3)
        bound = session.run(feeds)
        reference = plain_run(session.model.path, feeds)
    assert list(bound) == session.output_names  # by name, in catalog order
    for name, value in bound.items():
        assert value.device.type == "cpu"
        np.testing.assert_allclose(value.numpy(), reference[name], rtol=1e-6, atol=1e-6)


def test_outputs_depend_on_inputs_so_the_comparison_means_something(make_runtime: RuntimeFactory) -> None:
    with make_runtime().session("inswapper_128") as session:
        first = session.run(session.example_inputs(seed=1))["output"]
        second = session.run(session.example_inputs(seed=2))["output"]
    assert not torch.equal(first, second)


def test_batch_axis_follows_the_input(make_runtime: RuntimeFactory) -> None:
    with make_runtime().session("2d106det") as session:
        out = session.run({"data": torch.rand(3, 3, 192, 192)})
    assert out["fc1"].shape == (3, 212)


def test_data_dependent_output_sizes_come_back_whole(make_runtime: RuntimeFactory) -> None:
    """SCRFD 2.5g's anchor counts depend on the input size: ORT allocates, the result is torch."""
    with make_runtime().session("scrfd_2.5g") as session:
        feeds = {"input.1": torch.rand(1, 3, 320, 320)}
        out = session.run(feeds)
        reference = plain_run(session.model.path, feeds)
    assert set(out) == set(session.output_names)
    for name, value in out.items():
        np.testing.assert_allclose(value.numpy(), reference[name], rtol=1e-6)


def test_catalog_names_missing_are_taken_from_the_file_by_position(make_runtime: RuntimeFactory) -> None:
    entry = load_catalog().get("arcface_simswap")
    assert entry.inputs[0].name is None and entry.outputs[0].name is None
    with make_runtime().session("arcface_simswap") as session:
        assert session.input_names == ["input_0"]
        assert session.output_names == ["output_0"]
        assert session.run({"input_0": torch.rand(1, 3, 112, 112)})["output_0"].shape == (1, 512)


def test_caller_buffers_are_filled_in_place(make_runtime: RuntimeFactory) -> None:
    with make_runtime().session("occluder") as session:
        feeds = session.example_inputs(seed=5)
        buffer = torch.full((1, 1, 256, 256), -7.0)
        pointer = buffer.data_ptr()
        out = session.run(feeds, out={"output": buffer})
        fresh = session.run(feeds)
    assert out["output"] is buffer and buffer.data_ptr() == pointer
    assert torch.equal(buffer, fresh["output"])


def test_inputs_are_cast_to_the_model_dtype(make_runtime: RuntimeFactory) -> None:
    """CodeFormer's fidelity weight is float64 in the model; a float32 from the caller is cast."""
    with make_runtime().session("codeformer") as session:
        feeds = session.example_inputs(seed=1)
        as_float32 = {**feeds, "w": feeds["w"].float()}
        assert torch.equal(session.run(as_float32)["y"], session.run(feeds)["y"])


def test_wrong_inputs_are_refused_with_what_was_expected(make_runtime: RuntimeFactory) -> None:
    with make_runtime().session("inswapper_128") as session:
        with pytest.raises(ModelInputError, match=r"missing \['source'\]"):
            session.run({"target": torch.rand(1, 3, 128, 128)})
        with pytest.raises(ModelInputError, match="'target' must be 1x3x128x128, got 1x3x64x64"):
            session.run({"target": torch.rand(1, 3, 64, 64), "source": torch.rand(1, 512)})


def test_a_file_that_does_not_match_its_entry_is_named(
    standin_dir: Path, make_runtime: RuntimeFactory, tmp_path: Path
) -> None:
    """An entry whose tensor names are not in the file: the error names the file and what it has."""
    runtime = make_runtime()
    entry = runtime.store.catalog.get("occluder")
    renamed = entry.model_copy(
        update={"inputs": (TensorSpec(name="image", shape=(1, 3, 256, 256), dtype="float32"),)}
    )
    runtime.store.catalog = runtime.store.catalog.merged([renamed])
    with (
        pytest.raises(
            ModelFormatError, match=r"occluder.onnx: no input named 'image' \(the model has 'img'\)"
        ),
        runtime.session("occluder"),
    ):
        pass


def test_a_missing_model_says_how_to_get_it(make_runtime: RuntimeFactory) -> None:
    runtime = make_runtime()
    with pytest.raises(ModelNotReadyError, match=r"gfpgan_1.4.*not downloaded.*models download gfpgan_1.4"):
        runtime.model_file("gfpgan_1.4")


def test_standins_are_known_as_standins(standin_dir: Path, make_runtime: RuntimeFactory) -> None:
    runtime = make_runtime()
    model = runtime.model_file("inswapper_128")
    assert model.standin and model.sha256 != runtime.store.catalog.get("inswapper_128").sha256
    assert store_for(standin_dir).status(model.entry).state.value == "stand-in"
