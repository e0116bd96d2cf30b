"""Every stand-in loads in ONNX Runtime with exactly the catalog's tensor specs, and the behavioural
stand-ins (swappers, restorers, masks, NSFW analysers, the inswapper emap) behave exactly as documented."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from app.models.catalog import Kind, ModelEntry, TensorSpec, load_catalog
from app.models.store import STANDIN_MANIFEST, ModelState, ModelStore, StandinManifest
from tools.make_standins import (
    REGIONS_CELLS,
    ComputeSize,
    analyser_output,
    emap_matrix,
    make_standins,
    occluded_square,
    parser_label_map,
    regions_output,
    standin_file_name,
)

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
    options = ort.SessionOptions()
    options.log_severity_level = 3  # an inswapper's emap is unused by the graph: ORT warns, as the app hides
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _random_feed(session: ort.InferenceSession, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    dtypes = {ORT_TYPES[k]: v for k, v in NUMPY_TYPES.items()}
    return {
        a.name: rng.random([d if isinstance(d, int) else 1 for d in a.shape]).astype(dtypes[a.type])
        for a in session.get_inputs()
    }


def _ids(kind: Kind, family: str | None = None) -> list[str]:
    return [e.id for e in CATALOG if e.kind is kind and (family is None or e.family == family)]


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
    expected = {f"{i}@identity" for i in _ids(Kind.RESTORER)}
    expected |= {f"{i}@regions" for i in _ids(Kind.MASK)}
    expected |= {f"{i}@{b}" for i in _ids(Kind.ANALYSER) for b in ("safe", "unsafe")}
    assert expected <= set(variants)
    assert {s.state for s in store.statuses(rehash=True)} == {ModelState.STANDIN}
    merged = ModelStore(standins, CATALOG.merged(list(variants.values())))
    assert {merged.status(e).state for e in variants.values()} == {ModelState.STANDIN}
    assert all(e.name.startswith("STAND-IN") for e in variants.values())
    # The real catalog hash is untouched.
    assert CATALOG.get("inswapper_128").sha256.startswith("e4a3f08c")


def test_generation_is_deterministic(tmp_path: Path, standins: Path) -> None:
    again = make_standins(
        tmp_path,
        CATALOG,
        ["inswapper_128", "scrfd_10g", "codeformer", "xseg_1", "faceparser_resnet34", "nsfw_yolo_11m"],
    )
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


def test_manifest_records_every_behaviour_and_files_stay_small(standins: Path) -> None:
    manifest = StandinManifest.model_validate_json((standins / STANDIN_MANIFEST).read_text(encoding="utf-8"))
    behaviours = {(f.model_id, f.behaviour) for f in manifest.files.values()}
    assert ("codeformer", "identity") in behaviours and ("gpen_bfr_2048", "identity") in behaviours
    assert ("xseg_1", "regions") in behaviours and ("faceparser_resnet34", "regions") in behaviours
    assert {("nsfw_yolo_11m", "safe"), ("open_nsfw", "unsafe")} <= behaviours
    assert ("instyleswapper_256_a", "identity") in behaviours
    for name, info in manifest.files.items():
        assert (standins / name).stat().st_size == info.size < 1_300_000, name


@pytest.mark.parametrize("model_id", _ids(Kind.SWAPPER, "inswapper"))
def test_inswapper_standins_end_with_their_emap(model_id: str, standins: Path, tmp_path: Path) -> None:
    """InsightFace reads the emap as graph.initializer[-1]; every behaviour, compute too, carries it."""
    entry = CATALOG.get(model_id)
    emap = emap_matrix(entry)
    assert emap.shape == (512, 512) and emap.dtype == np.float32
    np.testing.assert_allclose(emap @ emap.T, np.eye(512), atol=1e-5)  # orthogonal: latents keep norm 1
    np.testing.assert_array_equal(emap, emap_matrix(entry))
    others = [emap_matrix(e) for e in CATALOG if e.family == "inswapper" and e.id != model_id]
    assert others and not any(np.array_equal(emap, other) for other in others)  # seeded by the id
    make_standins(tmp_path, CATALOG, [model_id], ComputeSize(8, 1))
    paths = [standins / standin_file_name(entry, b) for b in ("spec", "identity", "flat")]
    for path in [*paths, tmp_path / entry.file]:
        last = onnx.load(str(path)).graph.initializer[-1]
        assert last.name == "emap", path.name
        np.testing.assert_array_equal(onnx.numpy_helper.to_array(last), emap)
        session = _session(path)
        assert session.run(None, _random_feed(session, 0))[0].shape == (1, 3, 128, 128)


@pytest.mark.parametrize("model_id", _ids(Kind.SWAPPER, "instyleswapper"))
def test_instyleswapper_standins_carry_no_emap(model_id: str, standins: Path) -> None:
    entry = CATALOG.get(model_id)
    for behaviour in ("spec", "identity", "flat"):
        graph = onnx.load(str(standins / standin_file_name(entry, behaviour))).graph
        assert "emap" not in {i.name for i in graph.initializer}


@pytest.mark.parametrize("model_id", _ids(Kind.RESTORER))
def test_identity_restorer_returns_its_image(model_id: str, standins: Path) -> None:
    entry = CATALOG.get(model_id)
    session = _session(standins / standin_file_name(entry, "identity"))
    feed = _random_feed(session, 1)
    image = next(a.name for a in session.get_inputs() if tuple(a.shape) == entry.outputs[0].shape)
    out = session.run([session.get_outputs()[0].name], feed)[0]
    np.testing.assert_array_equal(out, feed[image])
    if model_id == "codeformer":  # the fidelity weight w (float64 [1]) is accepted and ignored
        assert feed["w"].dtype == np.float64
        again = session.run([session.get_outputs()[0].name], {**feed, "w": np.array([0.0])})[0]
        np.testing.assert_array_equal(again, feed[image])


def _run_twice(session: ort.InferenceSession) -> np.ndarray:
    """Runs on two different inputs, asserts the outputs are equal (input-independent), returns one."""
    first = session.run(None, _random_feed(session, 2))[0]
    np.testing.assert_array_equal(first, session.run(None, _random_feed(session, 3))[0])
    return first


def _square_pixels(height: int, width: int) -> np.ndarray:
    """[height, width] bool: True inside the documented occluded square, from its normalised corners."""
    x0, y0, x1, y1 = occluded_square()
    ys = (np.arange(height) / height)[:, None]
    xs = (np.arange(width) / width)[None, :]
    return (xs >= x0) & (xs < x1) & (ys >= y0) & (ys < y1)


@pytest.mark.parametrize("model_id", _ids(Kind.MASK, "occluder") + _ids(Kind.MASK, "xseg"))
def test_regions_mask_marks_the_documented_square(model_id: str, standins: Path) -> None:
    entry = CATALOG.get(model_id)
    out = _run_twice(_session(standins / standin_file_name(entry, "regions")))
    assert out.shape == entry.outputs[0].shape and out.dtype == np.float32
    plane = out[0, ..., 0] if entry.layout == "NHWC" else out[0, 0]
    square = _square_pixels(*plane.shape)
    assert square.sum() == (plane.shape[0] // 4) * (plane.shape[1] // 4)
    visible, occluded = (10.0, -10.0) if entry.family == "occluder" else (1.0, 0.0)
    np.testing.assert_array_equal(plane, np.where(square, occluded, visible).astype(np.float32))
    np.testing.assert_array_equal(out, regions_output(entry))


@pytest.mark.parametrize("model_id", _ids(Kind.MASK, "bisenet"))
def test_regions_parser_gives_the_documented_label_map(model_id: str, standins: Path) -> None:
    entry = CATALOG.get(model_id)
    out = _run_twice(_session(standins / standin_file_name(entry, "regions")))
    assert out.shape == (1, 19, 512, 512) and out.dtype == np.float32
    labels = parser_label_map()
    assert labels.shape == (REGIONS_CELLS, REGIONS_CELLS)
    expected = np.zeros((16, 16), dtype=np.int64)  # written out independently of parser_label_map
    expected[1:15, 1:15] = 1
    expected[1:3, 1:15] = 17
    expected[4, 4:6], expected[4, 10:12], expected[5, 4:6], expected[5, 10:12] = 2, 3, 4, 5
    expected[6:10, 7:9], expected[10, 6:10], expected[11:13, 6:10], expected[13, 6:10] = 10, 12, 11, 13
    np.testing.assert_array_equal(labels, expected)
    cell = 512 // REGIONS_CELLS
    full = np.kron(expected, np.ones((cell, cell), dtype=np.int64))
    np.testing.assert_array_equal(out[0].argmax(axis=0), full)
    np.testing.assert_array_equal(out[0], np.where(np.arange(19)[:, None, None] == full, 10.0, 0.0))
    np.testing.assert_array_equal(out, regions_output(entry))


@pytest.mark.parametrize("behaviour", ["safe", "unsafe"])
def test_nsfw_classifier_standins_are_constant(behaviour: str, standins: Path) -> None:
    entry = CATALOG.get("open_nsfw")
    out = _run_twice(_session(standins / standin_file_name(entry, behaviour)))
    values = [0.99, 0.01] if behaviour == "safe" else [0.01, 0.99]
    np.testing.assert_array_equal(out, np.array([values], dtype=np.float32))
    np.testing.assert_array_equal(out, analyser_output(entry, behaviour))


@pytest.mark.parametrize("behaviour", ["safe", "unsafe"])
def test_nsfw_yolo_standins_are_constant(behaviour: str, standins: Path) -> None:
    entry = CATALOG.get("nsfw_yolo_11m")
    out = _run_twice(_session(standins / standin_file_name(entry, behaviour)))
    expected = np.zeros((1, 9, 8400), dtype=np.float32)
    if behaviour == "unsafe":
        expected[0, :, 0] = [320, 320, 100, 100, 0.9, 0.9, 0.9, 0.9, 0.9]
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(out, analyser_output(entry, behaviour))
