"""The safe parser: size cap first, no DOCTYPE or ENTITY in any encoding, precise reasons."""

from __future__ import annotations

import pytest

from rueckkanal import safexml
from rueckkanal.errors import DecodeError, Reason

BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<lolz>&lol3;</lolz>"""


def reason(data: bytes, max_bytes: int = 4096) -> Reason:
    with pytest.raises(DecodeError) as caught:
        safexml.parse(data, max_bytes=max_bytes)
    return caught.value.reason


def test_plain_xml_parses() -> None:
    assert safexml.parse(b"<a><b>x</b></a>", max_bytes=100).findtext("b") == "x"


@pytest.mark.parametrize(
    "document",
    [
        BOMB,
        b'<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>',
        b'<!DOCTYPE a SYSTEM "http://example.invalid/a.dtd"><a/>',
        b"<!doctype a><a/>",
    ],
)
def test_doctype_and_entities_are_forbidden(document: bytes) -> None:
    assert reason(document) is Reason.XML_FORBIDDEN_CONSTRUCT


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
def test_a_doctype_hidden_by_the_encoding_is_found_after_parsing(encoding: str) -> None:
    declaration = f'<?xml version="1.0" encoding="{encoding.upper()}"?>'
    document = (declaration + BOMB.decode().split("?>", 1)[1]).encode(encoding)
    assert b"<!DOCTYPE" not in document
    assert reason(document, max_bytes=16384) is Reason.XML_FORBIDDEN_CONSTRUCT


def test_size_cap_is_checked_before_parsing() -> None:
    assert reason(b"<a>" + b"x" * 100 + b"</a>", max_bytes=50) is Reason.PAYLOAD_TOO_LARGE


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (b"<a>", Reason.XML_MALFORMED),
        (b"<a>&undefined;</a>", Reason.XML_MALFORMED),
        (b"", Reason.XML_MALFORMED),
        (b"<a>\xff</a>", Reason.INVALID_ENCODING),
        (b'<?xml version="1.0" encoding="no-such-charset"?><a/>', Reason.INVALID_ENCODING),
    ],
)
def test_broken_documents_have_precise_reasons(document: bytes, expected: Reason) -> None:
    assert reason(document) is expected
