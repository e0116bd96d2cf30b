"""The real command line, run as a user would (a subprocess of main.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.models.catalog import load_catalog
from tests.support.cli import MAIN, run
from tests.support.entries import blob, entry_for
from tests.support.http_server import FileServer


def test_models_list_json_lists_the_catalog(tmp_path: Path) -> None:
    result = run("models", "list", "--json", "--models-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    models = data["models"]
    assert len(models) >= 35
    for model in models:
        assert model["urls"] and all(u.startswith("https://") for u in model["urls"])
        assert len(model["sha256"]) == 64 and model["size"] > 0
        assert model["license"]["name"] and model["inputs"] and model["outputs"]
        assert model["state"] == "missing"
    assert data["models_dir"] == str(tmp_path.resolve())


def test_help_for_every_command() -> None:
    for args in (
        ["--help"],
        ["models", "--help"],
        ["models", "download", "--help"],
        ["models", "list", "-h"],
    ):
        result = run(*args)
        assert result.returncode == 0 and "usage:" in result.stdout


def test_common_options_work_before_the_command_too(tmp_path: Path) -> None:
    """`main.py -v COMMAND` and `main.py --models-dir DIR COMMAND` are not overwritten by the command's
    own defaults."""
    verbose = run("-v", "check-env", "--no-probe")
    assert verbose.returncode == 0 and "DEBUG" in verbose.stderr
    assert "DEBUG" not in run("check-env", "--no-probe").stderr
    listed = json.loads(run("--models-dir", str(tmp_path), "models", "list", "--json").stdout)
    assert listed["models_dir"] == str(tmp_path) and listed["models_dir_origin"] == "--models-dir"


def test_bad_usage_exits_2() -> None:
    assert run("models", "frobnicate").returncode == 2
    result = run("models", "download")
    assert result.returncode == 2 and "give model ids" in result.stderr
    assert run("models", "download", "scrfd_10g", "--all").returncode == 2


def test_unknown_model_is_a_user_error(tmp_path: Path) -> None:
    result = run("models", "show", "inswaper_128", "--models-dir", str(tmp_path))
    assert result.returncode == 1
    assert "Unknown model id 'inswaper_128'" in result.stderr and "Traceback" not in result.stderr


def test_bad_catalog_file_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "broken.json"
    bad.write_text("[{]")
    result = run("models", "list", "--catalog", str(bad))
    assert result.returncode == 1 and "broken.json is not valid JSON" in result.stderr


def _catalog_file(tmp_path: Path, entries) -> Path:
    path = tmp_path / "local-catalog.json"
    path.write_text(json.dumps([e.model_dump(mode="json") for e in entries]))
    return path


def test_download_verify_and_path_end_to_end(tmp_path: Path, file_server: FileServer) -> None:
    good, other = blob(150_000, seed=1), blob(90_000, seed=2)
    file_server.files["/good.onnx"] = good
    file_server.files["/other.onnx"] = other
    entries = [
        entry_for("local_good", good, [file_server.url("good.onnx")]),
        entry_for("local_other", other, [file_server.url("other.onnx")]),
    ]
    catalog = _catalog_file(tmp_path, entries)
    models = tmp_path / "models"
    common = ["--catalog", str(catalog), "--models-dir", str(models)]

    piped = run("models", "download", "local_good", *common)  # not a terminal: a line a model, no bars
    assert piped.returncode == 0 and "local_good: present" in piped.stderr and "%|" not in piped.stderr
    (models / "local_good.onnx").unlink()
    result = run("models", "download", "local_good", "local_other", "--json", *common)
    assert result.returncode == 0, result.stderr
    statuses = {r["id"]: r["status"] for r in json.loads(result.stdout)}
    assert statuses == {"local_good": "downloaded", "local_other": "downloaded"}
    assert (models / "local_good.onnx").read_bytes() == good

    again = run("models", "download", "local_good", "--json", *common)
    assert json.loads(again.stdout)[0]["status"] == "present"

    path = run("models", "path", "local_good", "--json", *common)
    assert json.loads(path.stdout) == {
        "id": "local_good",
        "path": str(models / "local_good.onnx"),
        "exists": True,
    }

    assert run("models", "verify", *common).returncode == 0
    (models / "local_other.onnx").write_bytes(bytes(len(other)))
    verify = run("models", "verify", "--json", *common)
    assert verify.returncode == 1
    states = {r["id"]: r["state"] for r in json.loads(verify.stdout)}
    assert states["local_other"] == "corrupt" and states["local_good"] == "present"


def test_failed_download_exits_1_and_names_the_url(tmp_path: Path, file_server: FileServer) -> None:
    entry = entry_for("local_missing", b"x" * 64, [file_server.url("nowhere.onnx")])
    catalog = _catalog_file(tmp_path, [entry])
    result = run(
        "models", "download", "local_missing", "--catalog", str(catalog), "--models-dir", str(tmp_path)
    )
    assert result.returncode == 1
    assert "nowhere.onnx: HTTP 404 Not Found" in result.stdout + result.stderr
    # piped, not a terminal: no progress bars, and the failure said once
    assert "%|" not in result.stderr and "\r" not in result.stderr
    assert (result.stdout + result.stderr).count("local_missing: failed") == 1


def test_models_dir_from_environment(tmp_path: Path) -> None:
    result = run("models", "path", "--json", env={"DOPPEL_MODELS_DIR": str(tmp_path / "env-models")})
    assert json.loads(result.stdout) == {
        "models_dir": str(tmp_path / "env-models"),
        "origin": "DOPPEL_MODELS_DIR",
    }


@pytest.mark.parametrize("model_id", ["inswapper_128_fp16", "retinaface_r50"])
def test_show_prints_the_entry(model_id: str, tmp_path: Path) -> None:
    result = run("models", "show", model_id, "--json", "--models-dir", str(tmp_path))
    data = json.loads(result.stdout)
    assert data["sha256"] == load_catalog().get(model_id).sha256 and data["state"] == "missing"


def test_gui_without_a_display_says_so() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    result = subprocess.run(
        [sys.executable, str(MAIN)], capture_output=True, text=True, timeout=60, env=env, check=False
    )
    assert result.returncode == 1
    assert "No display found" in result.stderr and "Traceback" not in result.stderr
