"""Every example record renders to exactly its reviewed golden message, valid for lxml and for xmlschema.

The golden files are pretty-printed for review; the comparison pretty-prints the rendered bytes the same way.
After a deliberate change of the message format, regenerate them with
``.venv/bin/python -m tests.unit.test_golden`` and review the diff.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import xmlschema
from lxml import etree

from rueckkanal.lifecycle import Advanced, VorgangState, advance
from rueckkanal.settings import XoevSettings
from rueckkanal.xoev import XSD_PATH, MessageRenderer, RenderedMessage, xsd
from tests.unit.factories import FIXED_CREATED_AT, FIXTURES_DIR, example_events

GOLDEN_DIR = FIXTURES_DIR / "golden"


def rendered_examples() -> Iterator[tuple[Path, RenderedMessage]]:
    """The examples through lifecycle and renderer, as the ingest stage would process them."""
    renderer = MessageRenderer(XoevSettings(produktversion="0.1.0"))  # fixed: a release must not touch them
    states: dict[str, VorgangState] = {}
    for path, event in example_events():
        result = advance(states.get(event.vorgang_key), event)
        assert isinstance(result, Advanced), f"{path.name}: {result}"
        states[event.vorgang_key] = result.state
        yield path, renderer.render(event, result.state, created_at=FIXED_CREATED_AT)


def golden_path(example: Path) -> Path:
    return GOLDEN_DIR / example.parent.name / f"{example.stem}.xml"


def pretty(xml: bytes) -> bytes:
    return etree.tostring(etree.fromstring(xml), pretty_print=True, xml_declaration=True, encoding="UTF-8")


RENDERED = list(rendered_examples())


def test_every_example_has_a_golden_file_and_no_golden_file_is_orphaned() -> None:
    expected = {golden_path(path) for path, _ in RENDERED}
    assert set(GOLDEN_DIR.glob("*/*.xml")) == expected
    assert len(expected) >= 30


@pytest.mark.parametrize(("example", "message"), RENDERED, ids=[path.name for path, _ in RENDERED])
def test_example_renders_to_its_golden_file(example: Path, message: RenderedMessage) -> None:
    assert pretty(message.xml) == golden_path(example).read_bytes()


@pytest.mark.parametrize("golden", sorted(GOLDEN_DIR.glob("*/*.xml")), ids=lambda path: path.name)
def test_golden_file_is_valid_for_lxml_and_xmlschema(golden: Path) -> None:
    document = etree.parse(str(golden))
    assert xsd().validate(document), xsd().error_log
    xmlschema.XMLSchema(str(XSD_PATH)).validate(str(golden))


def regenerate() -> None:
    for example, message in rendered_examples():
        target = golden_path(example)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(pretty(message.xml))


if __name__ == "__main__":
    regenerate()
