"""Engine facts in plain words for the status panel and the status bar.

Pure functions, no Qt: the provider situation ("TensorRT is not available: using CUDA") and provider
fallbacks ("GFPGAN v1.4 could not run on CUDA (out of memory); it now runs on the CPU"). Library errors
are long and technical; `plain_reason` boils the common ones down to a few words, and the full text stays
in the log and in `check-env`.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from typing import Literal, NamedTuple

from app.inference.fallbacks import FallbackEvent
from app.inference.providers import FALLBACK_ORDER, Hint, Provider, parse_hint

Level = Literal["info", "warning", "error"]
LEVELS: tuple[Level, ...] = ("info", "warning", "error")
REASON_CHARS = 80

# Library error text → a few words; the first pattern that matches wins.
_REASONS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), words)
    for pattern, words in (
        (r"out of memory|\boom\b|alloc(ation)?[ _]?fail|cudaErrorMemoryAllocation", "out of memory"),
        (
            r"cannot open shared object|\.so[.\d]*: |\.dll|could not load library|not found in path",
            "its libraries are missing",
        ),
        (r"not (installed|built|available|in this build)", "not installed"),
        (r"no cuda[- ]capable device|no (nvidia )?gpu", "no GPU found"),
        (r"driver", "a GPU driver problem"),
        (r"timed? ?out", "it timed out"),
    )
)


class Note(NamedTuple):
    """One user-level message with its level, for StatusPanel.add(note.text, note.level)."""

    text: str
    level: Level


def where(provider: Provider) -> str:
    """How a provider reads in a sentence: "TensorRT", "CUDA", "the CPU"."""
    return "the CPU" if provider is Provider.CPU else provider.label


def plain_reason(reason: str) -> str:
    """A library error in a few words: a known cause, else its first line, shortened."""
    for pattern, words in _REASONS:
        if pattern.search(reason):
            return words
    first = next((line.strip() for line in reason.splitlines() if line.strip()), "")
    first = first.rstrip(".")
    if len(first) > REASON_CHARS:
        first = first[: REASON_CHARS - 1].rstrip() + "…"
    return first or "no reason given"


def _hint(requested: str) -> Hint:
    try:
        return parse_hint(requested, "provider")
    except ValueError:
        return "auto"  # the settings validate this; words for the user must never raise


def effective_provider(usable: Collection[Provider], requested: str) -> Provider:
    """Where models will run: the requested provider or the fastest usable one after it; the CPU last."""
    hint = _hint(requested)
    start = 0 if hint == "auto" else FALLBACK_ORDER.index(Provider(hint))
    return next((p for p in FALLBACK_ORDER[start:] if p in usable), Provider.CPU)


def _because(provider: Provider, reasons: Mapping[Provider, str | None] | None) -> str:
    reason = (reasons or {}).get(provider)
    return f" ({plain_reason(reason)})" if reason else ""


def provider_notes(
    usable: Collection[Provider],
    requested: str,
    gpu_name: str | None,
    *,
    reasons: Mapping[Provider, str | None] | None = None,
) -> list[Note]:
    """The provider situation as notes, the headline first.

    `usable`: InferenceRuntime.usable; `requested`: the settings' provider ("auto", "tensorrt", "cuda",
    "cpu"); `gpu_name`: the GPU's name, None without one; `reasons`: why a provider is not usable
    (ProviderStatus.reason), optional.
    """
    hint = _hint(requested)
    chosen = effective_provider(usable, requested)
    gpu_usable = any(p.on_gpu for p in usable)
    notes: list[Note] = []

    if chosen is Provider.CPU:
        if hint == "cpu":
            notes.append(Note("Running on the CPU, as chosen in the settings: expect low speed", "info"))
        elif gpu_usable:  # asked for a GPU provider that is missing, and none after it is usable
            asked = Provider(hint)
            notes.append(
                Note(
                    f"{asked.label} is not available{_because(asked, reasons)}: "
                    "running on the CPU, expect low speed",
                    "warning",
                )
            )
        elif gpu_name:
            notes.append(
                Note(
                    f"{gpu_name} found, but CUDA cannot use it{_because(Provider.CUDA, reasons)}: "
                    "running on the CPU, expect low speed",
                    "warning",
                )
            )
        else:
            notes.append(Note("No GPU provider: running on the CPU, expect low speed", "warning"))
        return notes

    notes.append(Note(f"Running on {gpu_name or 'the GPU'} with {chosen.label}", "info"))
    if hint != "auto" and Provider(hint) is not chosen:
        asked = Provider(hint)
        notes.append(
            Note(f"{asked.label} is not available{_because(asked, reasons)}: using {chosen.label}", "warning")
        )
    elif hint == "auto" and Provider.TENSORRT not in usable:
        notes.append(
            Note(
                f"TensorRT is not available{_because(Provider.TENSORRT, reasons)}: using {chosen.label}",
                "info",
            )
        )
    return notes


def provider_messages(
    usable: Collection[Provider],
    requested: str,
    gpu_name: str | None,
    *,
    reasons: Mapping[Provider, str | None] | None = None,
) -> list[str]:
    """provider_notes without the levels."""
    return [note.text for note in provider_notes(usable, requested, gpu_name, reasons=reasons)]


def fallback_note(event: FallbackEvent, names: Mapping[str, str] | None = None) -> Note:
    """A provider fallback in words; `names` maps model ids to display names (the catalog's `name`)."""
    name = (names or {}).get(event.model_id, event.model_id)
    verb = "load" if event.phase == "load" else "run"
    head = f"{name} could not {verb} on {where(event.source)} ({plain_reason(event.reason)})"
    if event.target is None:
        return Note(f"{head}; no other provider can run it", "error")
    if event.target is Provider.CPU:
        return Note(f"{head}; it now runs on the CPU", "warning")
    return Note(f"{head}; it now runs on {where(event.target)}", "warning")


def fallback_message(event: FallbackEvent, names: Mapping[str, str] | None = None) -> str:
    """fallback_note without the level."""
    return fallback_note(event, names).text


def draft_note(pending: Sequence[str], names: Mapping[str, str] | None = None) -> str:
    """What the status bar says while the preview is a draft without these models (ids; `names` maps
    them to display names): "Showing the swap without GFPGAN v1.4 while it loads…"."""
    shown = [(names or {}).get(model, model) for model in pending]
    listed = shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]
    return f"Showing the swap without {listed} while {'it loads' if len(shown) == 1 else 'they load'}…"
