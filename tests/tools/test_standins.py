"""Every stand-in loads in ONNX Runtime with exactly the catalog's tensor specs, and the behavioural
swapper stand-ins behave as promised."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from app.models.catalog import ModelEntry, TensorSpec, load_catalog
from app.models.store import ModelState, ModelStore
from tools.make_standins import ComputeSize, make_standins, standin_file_name

CATALOG = load_catalog()
ORT_TYPES = {
    "float32": "tensor(float)",
    "float16": "tensor(float16)",
    "float64": "tensor(double)",
    "int64": "tensor(int64)",
    "int32": "tensor(int32)",
    "uint8": "tensor(uint8)",
    "bool": "tensor(bool)",
}
NUMPY_TYPES = {
    "float32": np.float32,
    "float16": np.float16,
    "float64": np.float64,
    "int64": np.int64,
    "int32": np.int32,
    "uint8": np.uint8,
    "bool": np.bool_,
}
DYNAMIC_SIZE = 4  # size used for named dynamic axes when feeding a stand-in


@pytest.fixture(scope="module")
def standins(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("standins")
    make_standins(directory, CATALOG)
    return directory


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _check(spec: TensorSpec, actual: ort.NodeArg) -> None:
    if spec.name is not None:
        assert actual.name == spec.name
    assert actual.type == ORT_TYPES[spec.dtype]
    assert tuple(actual.shape) == spec.shape


def _feed(entry: ModelEntry, session: ort.InferenceSession) -> dict[str, np.ndarray]:
    feed = {}
    for spec, arg in zip(entry.inputs, session.get_inputs(), strict=True):
        shape = [d if isinstance(d, int) else DYNAMIC_SIZE for d in spec.shape]
        feed[arg.name] = np.full(shape, 0.5, dtype=NUMPY_TYPES[spec.dtype])
    return feed


@pytest.mark.parametrize("entry", list(CATALOG), ids=lambda e: e.id)
def test_standin_matches_catalog_spec_and_runs(entry: ModelEntry, standins: Path) -> None:
    session = _session(standins / entry.file)
    inputs, outputs = session.get_inputs(), session.get_outputs()
    assert len(inputs) == len(entry.inputs)
    assert len(outputs) == len(entry.outputs) + len(entry.auxiliary_outputs)
    for spec, actual in zip(entry.inputs, inputs, strict=True):
        _check(spec, actual)
    for spec, actual in zip(entry.outputs, outputs, strict=False):
        _check(spec, actual)
    results = session.run(None, _feed(entry, session))
    for spec, value in zip(entry.outputs, results, strict=False):
        assert value.dtype == NUMPY_TYPES[spec.dtype]
        for axis, dim in enumerate(spec.shape):
            if isinstance(dim, int):
                assert value.shape[axis] == dim


def test_store_reports_standins_and_never_as_real(standins: Path) -> None:
    store = ModelStore(standins, CATALOG)
    states = {s.entry.id: s.state for s in store.statuses(rehash=True)}
    assert set(states.values()) == {ModelState.STANDIN}
    variants = {e.id: e for e in store.standin_entries()}
    assert "inswapper_128@identity" in variants and "hyperswap_1a_256@flat" in variants
    assert all(e.name.startswith("STAND-IN") for e in variants.values())
    # The real catalog hash is untouched.
    assert CATALOG.get("inswapper_128").sha256.startswith("e4a3f08c")


def test_generation_is_deterministic(tmp_path: Path, standins: Path) -> None:
    again = make_standins(tmp_path, CATALOG, ["inswapper_128", "scrfd_10g"])
    for name, info in again.files.items():
        assert (standins / name).read_bytes() == (tmp_path / name).read_bytes(), name
        assert info.sha256


@pytest.mark.parametrize("model_id", ["inswapper_128", "hyperswap_1a_256", "simswap_512", "ghostface_v2"])
def test_identity_swapper_returns_its_target_crop(model_id: str, standins: Path) -> None:
    entry = CATALOG.get(model_id)
    session = _session(standins / standin_file_name(entry, "identity"))
    rng = np.random.default_rng(0)
    feed = {
        a.name: rng.random([d if isinstance(d, int) else 1 for d in a.shape], dtype=np.float32)
        for a in session.get_inputs()
    }
    target = next(a.name for a in session.get_inputs() if tuple(a.shape) == entry.outputs[0].shape)
    out = session.run([session.get_outputs()[0].name], feed)[0]
    np.testing.assert_array_equal(out, feed[target])


def test_flat_swapper_returns_one_colour(standins: Path) -> None:
    entry = CATALOG.get("inswapper_128")  # output in 0..1: mean 0, std 255
    session = _session(standins / standin_file_name(entry, "flat"))
    feed = _feed(entry, session)
    out = session.run(None, feed)[0]
    np.testing.assert_allclose(out[0, :, 0, 0], np.array([64, 128, 192]) / 255, rtol=1e-6)
    assert np.ptp(out[0], axis=(1, 2)).max() == 0


def test_compute_standins_convolve_and_depend_on_every_input(tmp_path: Path) -> None:
    """A compute stand-in runs real convolutions, and its output moves with each input (a swapper's
    identity vector too), so GPU timings and CUDA-graph probes mean something."""
    manifest = make_standins(tmp_path, CATALOG, ["inswapper_128", "arcface_w600k_r50"], ComputeSize(8, 2))
    assert {f.behaviour for f in manifest.files.values()} == {"compute", "identity", "flat"}
    entry = CATALOG.get("inswapper_128")
    model = onnx.load(str(tmp_path / entry.file))
    assert sum(node.op_type == "Conv" for node in model.graph.node) == 3  # two trunk layers and a head
    session = _session(tmp_path / entry.file)
    rng = np.random.default_rng(1)
    target = rng.random((1, 3, 128, 128), dtype=np.float32)
    source = rng.random((1, 512), dtype=np.float32)
    base = session.run(None, {"target": target, "source": source})[0]
    assert base.shape == (1, 3, 128, 128) and base.std() > 1e-3
    assert not np.allclose(base, session.run(None, {"target": target, "source": source[:, ::-1].copy()})[0])
    assert not np.allclose(base, session.run(None, {"target": target[..., ::-1].copy(), "source": source})[0])
    embedding = _session(tmp_path / "w600k_r50.onnx").run(None, {"input.1": target[:, :, :112, :112].copy()})[
        0
    ]
    assert embedding.shape == (1, 512) and embedding.std() > 0
    # The main file stands in for the model itself: no extra "@compute" entry.
    assert not [e for e in ModelStore(tmp_path, CATALOG).standin_entries() if e.id.endswith("@compute")]
