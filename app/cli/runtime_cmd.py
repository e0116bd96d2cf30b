"""`python main.py warmup [ID ...]` and `python main.py check-env`."""

# The arguments only: the work is in app.cli.runtime_run, imported when a command runs (see app.cli.lazy).

from __future__ import annotations

import argparse
from typing import Any

from app.cli.lazy import LazyHandler
from app.inference.providers import HINTS


def add_parsers(subparsers: Any, common: argparse.ArgumentParser) -> None:
    warmup = subparsers.add_parser(
        "warmup", parents=[common], help="load models, run them once, and time them (provider, ms)"
    )
    warmup.add_argument(
        "ids", nargs="*", metavar="ID", help="models to warm (default: the installed default set)"
    )
    warmup.add_argument("--provider", choices=HINTS, help="start the provider chain here (default: settings)")
    warmup.add_argument(
        "--precision", choices=("fp16", "fp32"), help="TensorRT precision (default: settings)"
    )
    warmup.add_argument("--runs", type=int, default=10, metavar="N", help="timed runs after the first (10)")
    warmup.add_argument(
        "--probe-cuda-graphs",
        action="store_true",
        help="first decide per model whether CUDA graphs replay correctly (GPU only; remembered)",
    )
    warmup.set_defaults(handler=LazyHandler("app.cli.runtime_run", "run_warmup"))

    check = subparsers.add_parser("check-env", parents=[common], help="what this machine can run, and how")
    check.add_argument(
        "--no-probe", action="store_true", help="do not create test sessions on GPU providers (faster)"
    )
    check.set_defaults(handler=LazyHandler("app.cli.runtime_run", "check_env"))
