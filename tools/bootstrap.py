"""Set up Doppel on a fresh machine and start it, or run every check. Standard library only.

    python3 tools/bootstrap.py            create .venv, install what this machine needs, start the app
    python3 tools/bootstrap.py --test     the same environment plus test tools; run ruff, mypy,
                                          import-linter and pytest (what CI runs)

The install variant follows the machine: an NVIDIA driver (nvidia-smi) picks requirements_cu124.txt,
or requirements_cu13.txt for a CUDA 13 driver; otherwise requirements.txt (CPU). --variant overrides.
Installs are skipped when the requirement files have not changed since the last run.
Arguments after `--` go to main.py, e.g. `python3 tools/bootstrap.py -- models download --default`.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"
STAMP = VENV / ".doppel-requirements"
VARIANTS = {"cpu": "requirements.txt", "cu124": "requirements_cu124.txt", "cu13": "requirements_cu13.txt"}
DEV_REQUIREMENTS = "requirements-dev.txt"
PYTEST_NO_TESTS = 5


def log(message: str) -> None:
    sys.stderr.write(f"[bootstrap] {message}\n")
    sys.stderr.flush()


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def detect_variant() -> str:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return "cpu"
    try:
        out = subprocess.run([smi], capture_output=True, text=True, timeout=20, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "cpu"
    match = re.search(r"CUDA Version:\s*(\d+)", out)
    if match is None:
        return "cpu"
    return "cu13" if int(match.group(1)) >= 13 else "cu124"


def requirement_files(variant: str, dev: bool) -> list[Path]:
    files = [ROOT / VARIANTS[variant]]
    if dev:
        files.append(ROOT / DEV_REQUIREMENTS)
    return files


def _fingerprint(files: list[Path], variant: str) -> str:
    digest = hashlib.sha256(variant.encode())
    for path in sorted({*files, *ROOT.glob("requirements*.txt")}):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def ensure_environment(variant: str, dev: bool) -> None:
    if not venv_python().exists():
        log(f"creating a virtual environment in {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    files = requirement_files(variant, dev)
    fingerprint = _fingerprint(files, variant)
    with_dev = fingerprint + "+dev"
    installed = STAMP.read_text().strip() if STAMP.exists() else ""
    if installed in ((with_dev,) if dev else (fingerprint, with_dev)):
        log(f"environment up to date ({variant}{' + dev tools' if dev else ''})")
        return
    _remove_replaced_packages()
    for path in files:
        log(f"installing {path.name}")
        command = [str(venv_python()), "-m", "pip", "install", "--disable-pip-version-check", "-r", str(path)]
        if subprocess.run(command, cwd=ROOT, check=False).returncode != 0:
            raise SystemExit(f"[bootstrap] pip could not install {path.name}; see the messages above")
    STAMP.write_text(with_dev if dev else fingerprint)


# Packages an older install had that now clash with a replacement (both provide the `cv2` module; the
# contrib build adds the CSRT/KCF trackers).
REPLACED = ("opencv-python-headless", "opencv-python")


def _remove_replaced_packages() -> None:
    python = str(venv_python())
    for name in REPLACED:
        present = subprocess.run([python, "-m", "pip", "show", "-q", name], capture_output=True, check=False)
        if present.returncode == 0:
            log(f"removing {name} (replaced by opencv-contrib-python-headless)")
            subprocess.run([python, "-m", "pip", "uninstall", "-y", "-q", name], cwd=ROOT, check=False)


def run_checks() -> int:
    python = str(venv_python())
    checks = [
        ("ruff", [python, "-m", "ruff", "check", "."]),
        ("mypy", [python, "-m", "mypy"]),
        (
            "import-linter",
            [
                python,
                "-c",
                "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())",
            ],
        ),
        ("pytest", [python, "-m", "pytest"]),
    ]
    failed = []
    for name, command in checks:
        log(f"running {name}")
        code = subprocess.run(command, cwd=ROOT, check=False).returncode
        if name == "pytest" and code == PYTEST_NO_TESTS:
            log("pytest collected no tests: that is a failure here")
        if code != 0:
            failed.append(name)
    if failed:
        log(f"FAILED: {', '.join(failed)}")
        return 1
    log("all checks passed")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    app_args: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, app_args = argv[:split], argv[split + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--test", action="store_true", help="install test tools and run every check")
    parser.add_argument("--variant", choices=sorted(VARIANTS), help="install variant (default: detected)")
    parser.add_argument("--no-start", action="store_true", help="set up only; do not start the app")
    args = parser.parse_args(argv)
    variant = args.variant or detect_variant()
    log(f"install variant: {variant} ({VARIANTS[variant]})")
    ensure_environment(variant, dev=args.test)
    if args.test:
        return run_checks()
    if args.no_start:
        return 0
    return subprocess.run(
        [str(venv_python()), str(ROOT / "main.py"), *app_args], cwd=ROOT, check=False
    ).returncode


if __name__ == "__main__":
    sys.exit(main())
