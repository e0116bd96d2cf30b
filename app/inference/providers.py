"""Execution providers: what they are called, the fallback order, and how a hint becomes a chain.

A *hint* is what the catalog, the settings or a caller asks for ("auto", "tensorrt", "cuda", "cpu").
A *chain* is the ordered list of providers a model is tried on: the hinted one, then every slower one,
so that a failure anywhere still ends on the CPU with a correct result.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from enum import StrEnum
from typing import Literal

Hint = Literal["auto", "tensorrt", "cuda", "cpu"]
Precision = Literal["fp32", "fp16"]
HINTS: tuple[Hint, ...] = ("auto", "tensorrt", "cuda", "cpu")


class Provider(StrEnum):
    TENSORRT = "tensorrt"
    CUDA = "cuda"
    CPU = "cpu"

    @property
    def ort_name(self) -> str:
        return _ORT_NAMES[self]

    @property
    def on_gpu(self) -> bool:
        return self is not Provider.CPU

    @property
    def label(self) -> str:
        return {"tensorrt": "TensorRT", "cuda": "CUDA", "cpu": "CPU"}[self.value]


_ORT_NAMES = {
    Provider.TENSORRT: "TensorrtExecutionProvider",
    Provider.CUDA: "CUDAExecutionProvider",
    Provider.CPU: "CPUExecutionProvider",
}

# Providers that can replay CUDA graphs (TensorRT through its own option).
GRAPH_PROVIDERS: tuple[Provider, ...] = (Provider.TENSORRT, Provider.CUDA)

# Fastest first. Fallback always moves right, never left.
FALLBACK_ORDER: tuple[Provider, ...] = (Provider.TENSORRT, Provider.CUDA, Provider.CPU)


def parse_hint(value: str, where: str) -> Hint:
    """A hint from user input; `where` names the setting or option for the error message."""
    lowered = value.strip().lower()
    for hint in HINTS:
        if lowered == hint:
            return hint
    raise ValueError(f"{where}: '{value}' is not a provider; use one of {', '.join(HINTS)}")


def fallback_chain(
    hint: Hint, usable: Collection[Provider], disabled: Iterable[Provider] = ()
) -> list[Provider]:
    """The providers to try, in order, for one model.

    `auto` starts at the fastest usable provider; an explicit hint starts at that provider even when
    discovery thinks it unusable (the load then fails with its reason and falls back, which is what a
    user who asked for it wants to see). Providers disabled for this model after a failure are skipped.
    The CPU is always last, so the chain is never empty.
    """
    skip = set(disabled)
    if hint == "auto":
        start = next((p for p in FALLBACK_ORDER if p in usable and p not in skip), Provider.CPU)
    else:
        start = Provider(hint)
    chain = [p for p in FALLBACK_ORDER[FALLBACK_ORDER.index(start) :] if p not in skip]
    if hint == "auto":
        chain = [p for p in chain if p in usable or p is Provider.CPU]
    if Provider.CPU not in chain:
        chain.append(Provider.CPU)
    return chain
