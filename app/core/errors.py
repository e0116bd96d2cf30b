"""Domain exceptions. Every message names the file, model or URL concerned and what is wrong.

`DoppelError` and its subclasses are user-facing: the CLI prints the message and exits with 1,
the GUI shows it in words. Anything else escaping is a bug.
"""

from __future__ import annotations


class DoppelError(Exception):
    """A failure the user can understand and act on."""


class SettingsError(DoppelError):
    """The settings file cannot be read or has an unsupported version."""


class CatalogError(DoppelError):
    """A catalog file is malformed, or a model id is unknown."""


class UnknownModelError(CatalogError):
    def __init__(self, model_id: str, known: list[str] | None = None) -> None:
        hint = ""
        if known:
            close = [k for k in known if model_id.lower() in k.lower()][:5]
            if close:
                hint = f" (did you mean: {', '.join(close)}?)"
        super().__init__(f"Unknown model id '{model_id}'{hint}. `python main.py models list` shows them all.")
        self.model_id = model_id


class DownloadError(DoppelError):
    """A model could not be fetched; the message says why for each URL tried."""


class InsecureUrlError(DownloadError):
    """Only HTTPS is accepted (plain HTTP only to loopback, for tests)."""


class NetworkUnreachableError(DownloadError):
    """No URL of a model could be reached at all (DNS, refused, no route)."""


class HashMismatchError(DownloadError):
    """The fetched bytes do not have the catalog's SHA-256; they were deleted."""


class UnverifiedModelError(DownloadError):
    """The catalog entry's hash is not confirmed and the user did not pass the trust flag."""


class InsufficientDiskSpaceError(DownloadError):
    """Not enough free space for the planned downloads; refused before any transfer."""


class DownloadCancelledError(DownloadError):
    """The user cancelled; the .part file is kept so the next attempt resumes."""
