"""The one way to parse XML that comes from outside: legacy Fachverfahren payloads and portal answers.

Outside XML is hostile until proven otherwise. The parser never resolves entities, never loads a DTD, never touches
the network and refuses huge trees; a size cap is checked before any parsing. A document type declaration has no
legitimate use in our messages, so any DOCTYPE or ENTITY is refused outright (``xml_forbidden_construct``) instead
of being parsed around: a billion-laughs or XXE payload is never expanded, and the DLQ says plainly what it was.
"""

from __future__ import annotations

import threading

from lxml import etree

from rueckkanal.errors import DecodeError, Reason

_FORBIDDEN_MARKERS = (b"<!DOCTYPE", b"<!ENTITY", b"<!doctype", b"<!entity")  # each begins with "<!"
_ENCODING_ERRORS = frozenset({etree.ErrorTypes.ERR_INVALID_ENCODING, etree.ErrorTypes.ERR_UNSUPPORTED_ENCODING})
_local = threading.local()


def parser() -> etree.XMLParser:
    """The hardened parser, one per thread (lxml parsers keep state and must not be shared between threads).

    Outside XML goes through :func:`parse`; text this project wrote itself, every value escaped, is parsed with
    this parser directly (it can hold no declaration: its only ``<`` are the writer's own)."""
    parser: etree.XMLParser | None = getattr(_local, "parser", None)
    if parser is None:
        parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,
            remove_pis=True,
            collect_ids=False,
        )
        _local.parser = parser
    return parser


def parse(data: bytes, *, max_bytes: int) -> etree._Element:
    """Parse ``data`` into its root element, or raise :class:`DecodeError` with a precise reason.

    The byte scan catches the common case before libxml2 sees the document; the docinfo check after parsing
    catches a DOCTYPE hidden by an encoding the scan cannot read (UTF-16, EBCDIC).
    """
    if len(data) > max_bytes:
        raise DecodeError(f"XML payload of {len(data)} bytes exceeds {max_bytes}", reason=Reason.PAYLOAD_TOO_LARGE)
    if b"<!" in data and any(marker in data for marker in _FORBIDDEN_MARKERS):  # each marker begins with <!
        raise DecodeError("XML with a DOCTYPE or ENTITY declaration", reason=Reason.XML_FORBIDDEN_CONSTRUCT)
    try:
        root = etree.fromstring(data, parser=parser())
    except etree.XMLSyntaxError as exc:
        line = exc.position[0] if exc.position else 0
        if exc.code in _ENCODING_ERRORS:
            raise DecodeError(
                f"bytes invalid in the XML's encoding (line {line})", reason=Reason.INVALID_ENCODING
            ) from None
        raise DecodeError(f"not well-formed XML (line {line})", reason=Reason.XML_MALFORMED) from None
    except ValueError:
        raise DecodeError("not parseable as XML", reason=Reason.XML_MALFORMED) from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise DecodeError("XML with a DOCTYPE or ENTITY declaration", reason=Reason.XML_FORBIDDEN_CONSTRUCT)
    return root
