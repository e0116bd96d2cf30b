"""Inference failures. User-facing ones are DoppelErrors (the CLI prints them, exit 1); a provider that
fails is not an error at all to the caller: the session falls back and says so in the fallback log."""

from __future__ import annotations

from app.core.errors import DoppelError


class ModelNotReadyError(DoppelError):
    """The model file is missing, partial or corrupt; the message says how to fetch it."""


class ModelFormatError(DoppelError):
    """The model file does not match its catalog entry (tensor names or count)."""


class ModelInputError(DoppelError):
    """The caller's tensors do not fit the model (name, rank or size); no provider would do better."""


class InferenceError(DoppelError):
    """Every provider in the chain failed; the message lists why each one did."""


class ProviderLoadError(RuntimeError):
    """One provider could not load a model. Internal: the session falls back to the next provider."""
