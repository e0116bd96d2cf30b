"""Doppel: `python main.py` starts the desktop app; `python main.py --help` lists the commands.

The README's commands say `python main.py …`: run with a Python outside the environment that
`tools/bootstrap.py` made (`.venv`), this hands over to that environment's Python, so they work as
written after the bootstrap. Without one, a missing package is named with the command that installs it.
"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
VENV_PYTHON = VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _outside_the_venv() -> bool:
    return VENV_PYTHON.is_file() and Path(sys.prefix).resolve() != VENV.resolve()


def _hand_over() -> int:
    command = [str(VENV_PYTHON), str(ROOT / "main.py"), *sys.argv[1:]]
    if os.name == "nt":  # Windows has no exec: the console would regain control at once
        return subprocess.call(command)
    os.execv(command[0], command)
    return 1  # not reached


if __name__ == "__main__":
    if _outside_the_venv():
        sys.exit(_hand_over())
    try:
        from app.cli.main import main
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] == "app":
            raise
        sys.stderr.write(
            f"error: the package '{exc.name}' is not installed for {sys.executable}: "
            "run `python3 tools/bootstrap.py` first (it sets up .venv, which main.py then uses)\n"
        )
        sys.exit(1)
    sys.exit(main())
