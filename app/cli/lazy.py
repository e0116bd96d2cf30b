"""Command handlers that load their module when the command runs, not when the parser is built.

Building the parser (and `--help`, which exits while parsing) must not pay for the engine's imports:
torch, ONNX Runtime and PyAV take seconds. So each `*_cmd.py` holds only its command's arguments, and
names its handler here by module and function; `*_run.py` holds the work and imports the engine.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from app.models.context import AppContext

Handler = Callable[[argparse.Namespace, "AppContext"], int]


class LazyHandler:
    """`module.function`, imported on the first call (the same signature as any handler)."""

    def __init__(self, module: str, function: str) -> None:
        self.module = module
        self.function = function

    def resolve(self) -> Handler:
        return cast(Handler, getattr(importlib.import_module(self.module), self.function))

    def __call__(self, args: argparse.Namespace, ctx: AppContext) -> int:
        return self.resolve()(args, ctx)

    def __repr__(self) -> str:
        return f"LazyHandler({self.module}.{self.function})"
