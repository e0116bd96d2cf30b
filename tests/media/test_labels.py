from __future__ import annotations

import json

from app import APP_NAME, __version__
from app.media.labels import (
    IPTC_COMPOSITE_SYNTHETIC,
    LABEL_FORMAT,
    SyntheticLabel,
    label_from_xmp,
    parse,
    xmp_packet,
)


def test_label_defaults_name_this_app_and_round_trip_through_compact_json() -> None:
    label = SyntheticLabel(models=("inswapper_128", "gfpgan_1.4"), watermark=True)
    text = label.to_json()
    data = json.loads(text)
    assert list(data)[:2] == ["format", "version"]
    assert data["format"] == LABEL_FORMAT and data["version"] == 1
    assert data["generator"] == APP_NAME and data["generator_version"] == __version__
    assert data["synthetic"] is True and data["created"].endswith("+00:00")
    assert " " not in text and text.isascii()
    assert parse(text) == label


def test_foreign_or_broken_text_is_not_a_label() -> None:
    assert parse(None) is None
    assert parse("") is None
    assert parse("Canon EOS 5D") is None
    assert parse('{"format": "something.else", "version": 1}') is None
    assert parse('{"format": "doppel.synthetic-media"}') is None  # no version
    fields_missing = {"format": LABEL_FORMAT, "version": 1, "generator": "Doppel"}
    assert parse(json.dumps(fields_missing)) is None  # defaults must not invent a history
    wrong_type = json.loads(SyntheticLabel().to_json()) | {"models": 3}
    assert parse(json.dumps(wrong_type)) is None


def test_a_newer_label_version_is_still_read() -> None:
    data = json.loads(SyntheticLabel(models=("m",)).to_json()) | {"version": 7, "future_field": [1, 2]}
    label = parse(json.dumps(data))
    assert label is not None and label.synthetic and label.models == ("m",)


def test_xmp_packet_carries_the_iptc_source_type_and_the_label() -> None:
    label = SyntheticLabel(models=("a<b>&c",))
    packet = xmp_packet(label)
    assert packet.startswith(b"<?xpacket begin=")
    assert f"<Iptc4xmpExt:DigitalSourceType>{IPTC_COMPOSITE_SYNTHETIC}</".encode() in packet
    assert b"<xmp:CreatorTool>Doppel " in packet
    assert label_from_xmp(packet) == label
    assert label_from_xmp(packet.decode()) == label
    assert label_from_xmp(b"<x:xmpmeta/>") is None
