"""A fast start: `--help` and every command's argument parsing import none of the engine's libraries.

torch, ONNX Runtime and PyAV take seconds to import; a user asking for `swap --help`, or mistyping an
option, must not wait for them. One subprocess (a clean interpreter) runs main.py for every command
found in the parser, so a command added later is covered without editing this file.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from app.cli.lazy import LazyHandler
from app.cli.main import build_parser
from tests.support.cli import ROOT

HEAVY = ("torch", "onnxruntime", "onnx", "av", "cv2", "PySide6")

# Runs main.py as `python main.py COMMAND --help` would, once per command, then lists what got imported.
_SCRIPT = """
import contextlib, io, json, runpy, sys

from tests.cli.test_fast_start import HEAVY, commands
from app.cli.main import build_parser

runs = []
for path in [[], *(path for path, _ in commands(build_parser()))]:
    sys.argv = ["main.py", *path, "--help"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            runpy.run_path("main.py", run_name="__main__")
            code = None
        except SystemExit as exc:
            code = exc.code
    runs.append({"path": path, "code": code, "usage": "usage:" in out.getvalue()})
heavy = sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)
sys.__stdout__.write(json.dumps({"runs": runs, "heavy": heavy}))
"""


def commands(parser: argparse.ArgumentParser) -> list[tuple[list[str], argparse.ArgumentParser]]:
    """Every command and sub-command, as the words that name it (["models", "list"]) and its parser."""
    found: list[tuple[list[str], argparse.ArgumentParser]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append(([name], sub))
                found.extend(([name, *path], leaf) for path, leaf in commands(sub))
    return found


def test_help_of_every_command_imports_no_engine() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    ran = {" ".join(run["path"]) for run in report["runs"]}
    assert {"", "swap", "detect", "live", "bench", "warmup", "check-env", "gui"} <= ran
    assert {"models list", "models download", "queue run", "presets show"} <= ran
    for run in report["runs"]:
        assert run["code"] == 0 and run["usage"], run
    assert report["heavy"] == [], f"parsing imported the engine: {report['heavy'][:10]}"


def test_every_lazy_handler_names_a_real_function() -> None:
    """Handlers are named by strings (so that parsing need not import them): each must resolve."""
    handlers = [sub.get_default("handler") for _, sub in commands(build_parser())]
    lazy = [h for h in handlers if isinstance(h, LazyHandler)]
    assert len(lazy) >= 15
    for handler in lazy:
        assert callable(handler.resolve()), handler
