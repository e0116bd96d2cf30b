"""`main.py detect`, run as a user would, with the real SCRFD."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from tests.support.cli import run
from tests.support.real_models import REAL_SCRFD_ID, real_scrfd_store


def _catalog_file(test_assets: Path, tmp_path: Path) -> tuple[Path, Path]:
    store = real_scrfd_store(test_assets, tmp_path / "models")
    entries = [e.model_dump(mode="json") for e in store.catalog]
    path = tmp_path / "real.json"
    path.write_text(json.dumps(entries))
    return store.root, path


def test_detect_prints_json_and_draws(test_assets: Path, tmp_path: Path) -> None:
    models, catalog = _catalog_file(test_assets, tmp_path)
    drawn = tmp_path / "drawn.png"
    common = ["--models-dir", str(models), "--catalog", str(catalog), "--detector", REAL_SCRFD_ID]
    result = run("detect", str(test_assets / "newton.png"), *common, "--json", "--draw", str(drawn))
    assert result.returncode == 0, result.stderr
    [face] = json.loads(result.stdout)["faces"]
    assert face["score"] > 0.5 and set(face["keypoints"]) == {
        "left_eye",
        "right_eye",
        "nose",
        "left_mouth",
        "right_mouth",
    }
    with Image.open(drawn) as image:
        assert image.size == Image.open(test_assets / "newton.png").size
        assert image.getpixel((round(face["box"][0]), round((face["box"][1] + face["box"][3]) / 2))) == (
            0,
            255,
            0,
        )
    text = run("detect", str(test_assets / "solvay_conference_1927.jpg"), *common)
    assert text.returncode == 0 and text.stdout.startswith("29 face(s) in")


def test_detect_names_a_bad_image(test_assets: Path, tmp_path: Path) -> None:
    models, catalog = _catalog_file(test_assets, tmp_path)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    result = run(
        "detect",
        str(broken),
        "--models-dir",
        str(models),
        "--catalog",
        str(catalog),
        "--detector",
        REAL_SCRFD_ID,
    )
    assert result.returncode == 1 and f"Image {broken} cannot be read" in result.stderr
    missing = run("detect", str(tmp_path / "nope.jpg"), "--models-dir", str(models))
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    bad_rotation = run("detect", str(broken), "--rotation", "sideways")
    assert bad_rotation.returncode == 2 and "not off, auto or an angle" in bad_rotation.stderr


def test_detect_adds_landmarks_and_embeddings(test_assets: Path, tmp_path: Path) -> None:
    store = real_scrfd_store(test_assets, tmp_path / "models", ("2dfan4", "fan_68_5", "arcface_w600k_r50"))
    catalog = tmp_path / "real.json"
    catalog.write_text(json.dumps([store.catalog.get(REAL_SCRFD_ID).model_dump(mode="json")]))
    common = ["--models-dir", str(store.root), "--catalog", str(catalog), "--detector", REAL_SCRFD_ID]
    image = str(test_assets / "newton.png")
    result = run(
        "detect", image, *common, "--landmarks", "auto", "--recogniser", "arcface_w600k_r50", "--json"
    )
    assert result.returncode == 0, result.stderr
    [face] = json.loads(result.stdout)["faces"]
    assert face["landmarks"]["model"] in {"2dfan4", "fan_68_5"} and len(face["landmarks"]["points"]) == 68
    assert 0.0 <= face["landmarks"]["confidence"] <= 1.0
    assert len(face["embedding"]["normalised"]) == 512
    assert abs(sum(v * v for v in face["embedding"]["normalised"]) - 1.0) < 1e-3

    chosen = run("detect", image, *common, "--landmarks", "fan_68_5")
    assert chosen.returncode == 0 and "68 by fan_68_5" in chosen.stdout

    wrong_kind = run("detect", image, *common, "--landmarks", "arcface_w600k_r50")
    assert wrong_kind.returncode == 1 and "not a landmarker" in wrong_kind.stderr


def test_detect_auto_landmarks_needs_one_installed(test_assets: Path, tmp_path: Path) -> None:
    models, catalog = _catalog_file(test_assets, tmp_path)
    common = ["--models-dir", str(models), "--catalog", str(catalog), "--detector", REAL_SCRFD_ID]
    result = run("detect", str(test_assets / "newton.png"), *common, "--landmarks", "auto")
    assert result.returncode == 1 and "no landmarker is installed" in result.stderr
