"""The DIN SPEC 91379 character list and the XSD patterns made from it."""

from __future__ import annotations

import unicodedata

from lxml import etree

from rueckkanal import latinchars
from rueckkanal.xoev import XSD_PATH

XS = "{http://www.w3.org/2001/XMLSchema}"
#: The text types of the schema and the datatype each one carries.
LATIN_TYPES = {
    "String.Latin.B.Zeile.64": ("B", True),
    "String.Latin.B.Zeile.255": ("B", True),
    "String.Latin.C.Zeile.50": ("C", True),
    "String.Latin.C.Zeile.100": ("C", True),
    "String.Latin.C.Zeile.128": ("C", True),
    "String.Latin.C.500": ("C", False),
}


def test_the_list_has_every_group_and_only_nfc_entries() -> None:
    entries = latinchars.entries()
    assert len(entries) == 924
    assert {entry.group for entry in entries} == set(latinchars.GROUPS)
    assert all(unicodedata.normalize("NFC", entry.text) == entry.text for entry in entries)
    assert {len(latinchars.characters(d)) for d in "AB"} == {517, 577}


def test_every_latin_type_of_the_xsd_carries_the_pattern_generated_from_the_list() -> None:
    schema = etree.parse(str(XSD_PATH))
    found = {}
    for simple in schema.iter(f"{XS}simpleType"):
        name = simple.get("name", "")
        if name.startswith("String.Latin."):
            found[name] = simple.find(f"{XS}restriction/{XS}pattern").get("value")  # type: ignore[union-attr]
    assert set(found) == set(LATIN_TYPES)
    for name, (datatype, single_line) in LATIN_TYPES.items():
        assert found[name] == latinchars.xsd_pattern(datatype, single_line=single_line), name


def test_a_sequence_counts_as_one_unit_but_a_lone_combining_mark_only_in_c() -> None:
    sequence = "C\u0328\u0306"  # C with ogonek and breve: a defined sequence without a precomposed character
    assert latinchars.first_outside(sequence, "B") is None
    assert latinchars.first_outside("x\u0306", "B") == "\u0306"  # not a defined sequence
    assert latinchars.first_outside("x\u0306", "C") is None  # group dc belongs to datatype C
    assert latinchars.first_outside("Zeile\n", "C", single_line=True) == "\n"
    assert latinchars.first_outside("Zeile\n", "C") is None
