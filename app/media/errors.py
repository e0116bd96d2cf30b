"""Media errors in one place, so callers catch one family whatever the file type.

Every message names the file (or folder) and what is wrong with it; the CLI prints it as it is.
"""

from __future__ import annotations

from app.core.errors import DoppelError


class MediaReadError(DoppelError):
    """An image or video is missing, not media, damaged, or something Doppel does not read."""


class ImageReadError(MediaReadError):
    """An image cannot be read (also importable from app.media.images, where it was born)."""


class MediaWriteError(DoppelError):
    """An image or video cannot be written: bad folder, unsupported format, bad frame, encoder failure."""


class VirtualCameraError(MediaWriteError):
    """No virtual camera device to send to (the message says what to install), or it refused a frame."""
