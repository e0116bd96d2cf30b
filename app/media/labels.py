"""The synthetic-media label: every image and video Doppel writes says that it was made by Doppel, with
which models, and that it contains synthetic (swapped) faces.

Responsible use: a viewer, a platform or a later Doppel run can find out that a file is a composite with
synthetic elements. The label is small versioned JSON (`format: doppel.synthetic-media`) stored where
each format has room for text (PNG iTXt, EXIF ImageDescription, container comment tags), plus an XMP
packet carrying the IPTC digital source type `compositeSynthetic`, the vocabulary C2PA-aware tools and
news agencies read. `read_label` finds it again in every format Doppel writes.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import av
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app import APP_NAME, __version__
from app.media.errors import MediaReadError

log = logging.getLogger(__name__)

LABEL_FORMAT = "doppel.synthetic-media"
LABEL_VERSION = 1
PNG_LABEL_KEY = "doppel:synthetic-media"  # the PNG iTXt keyword
PNG_XMP_KEY = "XML:com.adobe.xmp"  # the keyword the XMP specification gives PNG
EXIF_IMAGE_DESCRIPTION = 0x010E
EXIF_SOFTWARE = 0x0131
IPTC_COMPOSITE_SYNTHETIC = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeSynthetic"
XMP_NAMESPACE = "urn:doppel:synthetic-media:1"  # our own property; a URN, so it claims no web domain
VIDEO_LABEL_TAGS = ("comment", "description")  # container tags, compared case-insensitively (MKV: COMMENT)


_REQUIRED_KEYS = frozenset({"generator", "generator_version", "synthetic", "created"})


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class SyntheticLabel(BaseModel):
    """What made a file: Doppel's name and version, the models used, and whether a watermark was drawn."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    generator: str = APP_NAME
    version: str = __version__
    synthetic: bool = True
    created: str = Field(default_factory=_now)  # UTC, ISO 8601
    models: tuple[str, ...] = ()
    watermark: bool = False

    @property
    def software(self) -> str:
        """The EXIF Software / XMP CreatorTool value, e.g. "Doppel 0.1.0"."""
        return f"{self.generator} {self.version}"

    def to_json(self) -> str:
        """Compact ASCII JSON (EXIF ImageDescription is an ASCII field), format and version first.

        "version" is the label format's version, so the app's version goes under "generator_version".
        """
        fields = self.model_dump(mode="json")
        fields["generator_version"] = fields.pop("version")
        body: dict[str, Any] = {"format": LABEL_FORMAT, "version": LABEL_VERSION, **fields}
        return json.dumps(body, separators=(",", ":"), ensure_ascii=True)

    @classmethod
    def parse(cls, text: str | bytes | None) -> SyntheticLabel | None:
        """The label in `text`, or None when it is not one (any other comment or description).

        Foreign text is normal (a camera's ImageDescription), so this never raises. A label from a newer
        Doppel (higher `version`) is still read for the fields this one knows: it still says synthetic.
        """
        if not text:
            return None
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(data, dict) or data.get("format") != LABEL_FORMAT:
            return None
        if not isinstance(data.get("version"), int) or data["version"] < 1:
            return None
        if not _REQUIRED_KEYS.issubset(data):  # defaults must never fill in a file's history
            log.info("Ignoring a synthetic-media label without %s", sorted(_REQUIRED_KEYS - data.keys()))
            return None
        if data["version"] > LABEL_VERSION:
            log.info("Synthetic-media label version %s is newer than %s", data["version"], LABEL_VERSION)
        fields = {k: v for k, v in data.items() if k not in ("format", "version")}
        if "generator_version" in fields:
            fields["version"] = fields.pop("generator_version")
        try:
            return cls.model_validate(fields)
        except ValidationError as exc:
            log.info("Ignoring a malformed synthetic-media label: %s", exc)
            return None


def parse(text: str | bytes | None) -> SyntheticLabel | None:
    return SyntheticLabel.parse(text)


def xmp_packet(label: SyntheticLabel) -> bytes:
    """An XMP packet with the IPTC digital source type, the creator tool, and the label itself."""
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        '  <rdf:Description rdf:about=""\n'
        '    xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"\n'
        '    xmlns:xmp="http://ns.adobe.com/xap/1.0/"\n'
        f'    xmlns:doppel="{XMP_NAMESPACE}">\n'
        f"   <Iptc4xmpExt:DigitalSourceType>{IPTC_COMPOSITE_SYNTHETIC}</Iptc4xmpExt:DigitalSourceType>\n"
        f"   <xmp:CreatorTool>{escape(label.software)}</xmp:CreatorTool>\n"
        f"   <xmp:CreateDate>{escape(label.created)}</xmp:CreateDate>\n"
        f"   <doppel:Label>{escape(label.to_json())}</doppel:Label>\n"
        "  </rdf:Description>\n"
        " </rdf:RDF>\n"
        "</x:xmpmeta>\n"
        '<?xpacket end="w"?>'
    ).encode()


_XMP_LABEL = re.compile(rb"<doppel:Label>(.*?)</doppel:Label>", re.DOTALL)
_XML_ENTITIES = {b"&lt;": b"<", b"&gt;": b">", b"&quot;": b'"', b"&apos;": b"'", b"&amp;": b"&"}


def label_from_xmp(xmp: str | bytes | None) -> SyntheticLabel | None:
    """The label in an XMP packet Doppel wrote. A pattern, not an XML parser: the packet is untrusted
    input, and reading one known element needs no entity handling beyond the five XML escapes."""
    if not xmp:
        return None
    data = xmp.encode() if isinstance(xmp, str) else xmp
    match = _XMP_LABEL.search(data)
    if match is None:
        return None
    text = match.group(1)
    for entity, char in _XML_ENTITIES.items():
        text = text.replace(entity, char)
    return SyntheticLabel.parse(text)


def _image_label(image: Image.Image) -> SyntheticLabel | None:
    text = image.info.get(PNG_LABEL_KEY)
    if isinstance(text, str) and (label := SyntheticLabel.parse(text)):
        return label
    description = image.getexif().get(EXIF_IMAGE_DESCRIPTION)
    if isinstance(description, str | bytes) and (label := SyntheticLabel.parse(description)):
        return label
    return label_from_xmp(image.info.get("xmp") or image.info.get(PNG_XMP_KEY))


def _video_label(path: Path) -> SyntheticLabel | None:
    try:
        with av.open(str(path)) as container:
            tags = {key.lower(): value for key, value in container.metadata.items()}
    except av.error.FFmpegError as exc:
        raise MediaReadError(f"{path} is neither an image nor a video PyAV can read: {exc}") from exc
    for key in VIDEO_LABEL_TAGS:
        if label := SyntheticLabel.parse(tags.get(key)):
            return label
    return None


def read_label(path: Path) -> SyntheticLabel | None:
    """The Doppel label of an image or video, or None when it has none.

    A missing or unreadable file is a MediaReadError: "no label" must not be said of a file that was
    never looked at.
    """
    if not path.is_file():
        raise MediaReadError(f"{path} does not exist")
    try:
        with Image.open(path) as image:
            return _image_label(image)
    except UnidentifiedImageError:
        pass  # not an image: perhaps a video
    except (OSError, SyntaxError, ValueError) as exc:
        raise MediaReadError(f"Image {path} cannot be read for its label: {exc}") from exc
    return _video_label(path)
