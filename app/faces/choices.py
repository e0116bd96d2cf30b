"""How several source faces combine into one identity, apart from app.faces.identity (torch): the CLI's
parser lists the methods as choices without loading the engine."""

from __future__ import annotations

from enum import StrEnum


class Combine(StrEnum):
    MEAN = "mean"
    MEDIAN = "median"
