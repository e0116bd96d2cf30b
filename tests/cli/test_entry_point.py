"""`python main.py …` as the README writes it: with a Python outside .venv it runs in .venv's Python;
without the packages it names the missing one and the command that installs it, and exits 1."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BASE_PYTHON = getattr(sys, "_base_executable", sys.executable)


@pytest.mark.skipif(
    Path(sys.prefix).resolve() != (ROOT / ".venv").resolve() or sys.executable == BASE_PYTHON,
    reason="needs the tests to run in the repository's .venv, with a base Python beside it",
)
def test_a_python_outside_the_venv_hands_over_to_it() -> None:
    probe = "import platformdirs"  # installed in .venv by the bootstrap, absent from a bare Python
    bare = subprocess.run([BASE_PYTHON, "-c", probe], capture_output=True, check=False)
    if bare.returncode == 0:
        pytest.skip("the base Python has the app's packages too: nothing to hand over")
    result = subprocess.run(
        [BASE_PYTHON, str(ROOT / "main.py"), "models", "path"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()  # the models folder, printed by the app running in .venv


def test_without_the_packages_the_error_names_one_and_the_bootstrap(tmp_path: Path) -> None:
    shutil.copy(ROOT / "main.py", tmp_path / "main.py")  # a checkout with no .venv
    cli = tmp_path / "app" / "cli"
    cli.mkdir(parents=True)
    (tmp_path / "app" / "__init__.py").write_text("")
    (cli / "__init__.py").write_text("")
    (cli / "main.py").write_text("import doppel_absent_dependency\n")
    result = subprocess.run(
        [sys.executable, str(tmp_path / "main.py"), "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert "'doppel_absent_dependency' is not installed" in result.stderr
    assert "python3 tools/bootstrap.py" in result.stderr
    assert "Traceback" not in result.stderr
