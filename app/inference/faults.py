"""Fault injection for the provider fallback paths: make a provider fail on purpose, at load or at run.

Real failures (a missing libnvinfer, an out-of-memory mid-run, a kernel that faults) are rare and hard to
summon on demand; the fallback code that handles them must still be proven. A plan names provider and
phase, optionally one model:

    DOPPEL_INJECT_FAULTS="tensorrt:load,cuda:run:inswapper_128" python main.py warmup

The failure is raised at the exact point a real one would surface, so everything after it is real.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from app.core.errors import DoppelError
from app.inference.providers import Provider

ENV_VAR = "DOPPEL_INJECT_FAULTS"
PHASES = ("load", "run")


class FaultPlanError(DoppelError):
    """The fault plan's text cannot be read."""


class InjectedFaultError(RuntimeError):
    """A failure raised on purpose by a FaultPlan."""


@dataclass(frozen=True)
class Fault:
    provider: Provider
    phase: str
    model_id: str | None = None


class FaultPlan:
    def __init__(self, faults: list[Fault] | None = None) -> None:
        self.faults = list(faults or [])

    @classmethod
    def parse(cls, text: str) -> FaultPlan:
        faults = []
        for item in filter(None, (part.strip() for part in text.split(","))):
            pieces = item.split(":")
            if len(pieces) not in (2, 3) or pieces[1] not in PHASES:
                raise FaultPlanError(f"{ENV_VAR}: '{item}' is not PROVIDER:load|run[:MODEL_ID]")
            try:
                provider = Provider(pieces[0])
            except ValueError:
                raise FaultPlanError(f"{ENV_VAR}: '{pieces[0]}' is not a provider") from None
            faults.append(Fault(provider, pieces[1], pieces[2] if len(pieces) == 3 else None))
        return cls(faults)

    @classmethod
    def from_environment(cls) -> FaultPlan:
        return cls.parse(os.environ.get(ENV_VAR, ""))

    def check(self, provider: Provider, phase: str, model_id: str) -> None:
        for fault in self.faults:
            if fault.provider is provider and fault.phase == phase and fault.model_id in (None, model_id):
                raise InjectedFaultError(f"injected {phase} fault on {provider.label} ({ENV_VAR})")
