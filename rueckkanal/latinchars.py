"""DIN SPEC 91379 character sets ("String.Latin+ 1.2"), read from the normative character list, and the text rules
of XAntragsstatus built on them.

The list ``rueckkanal/data/xoev/din-spec-91379/latin_list_1.2.txt`` (package data) names every character and every
defined sequence with its group (``bll`` letters, ``bnlreq``/``bnl``/``bnlopt``/``bnlnot`` non-letters N1–N4,
``dc`` combining diacritics, ``gl``/``cl``/``enl`` the extended Greek, Cyrillic and non-letter groups). A datatype
is a union of groups (:data:`DATATYPES`). One function builds the regular expression of a datatype; the XSD carries
its output verbatim (``tests/unit/test_latinchars.py`` compares them) and the event model uses the same expression,
so the model accepts exactly what the schema accepts.

Rules of this module:

* a value is NFC-normalised first (DIN SPEC 91379 and String.Latin+ 1.2, section B.7, require NFC);
* a defined sequence (letter + combining marks without a precomposed form) counts as one unit; a combining mark on
  its own is only part of datatype C and E, which contain the group ``dc``;
* single-line fields use the datatype without TAB, LF and CR (group N4 minus NO-BREAK SPACE);
* transliteration is per field (:class:`TextRule`): citizen text replaces a short list of typographic characters
  (:data:`TYPOGRAPHIC`) that are missing from datatype C and refuses anything else outside it; payment text is
  reduced to the SEPA character set (:data:`SEPA_TRANSLITERATION`, ä → ae); identifiers are never changed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path

from rueckkanal.resources import data_path

LIST_PATH = data_path("xoev", "din-spec-91379", "latin_list_1.2.txt")

#: Groups of DIN SPEC 91379 in the order of the list, with their German names (String.Latin+ 1.2).
GROUPS: Mapping[str, str] = {
    "bll": "Lateinische Buchstaben (normativ)",
    "bnlreq": "Nicht-Buchstaben N1, für alle Namen erforderlich (normativ)",
    "bnl": "Nicht-Buchstaben N2, für nicht alle Namen erforderlich (normativ)",
    "bnlopt": "Nicht-Buchstaben N3, für Namen juristischer Personen (normativ)",
    "bnlnot": "Nicht-Buchstaben N4, für Namen ungeeignet (normativ)",
    "dc": "Kombinierende diakritische Zeichen (normativ)",
    "gl": "Griechische Buchstaben (erweitert)",
    "cl": "Kyrillische Buchstaben (erweitert)",
    "enl": "Nicht-Buchstaben E1 (erweitert)",
}

#: The datatypes A–E of DIN SPEC 91379 as unions of groups.
DATATYPES: Mapping[str, tuple[str, ...]] = {
    "A": ("bll", "bnlreq"),
    "B": ("bll", "bnlreq", "bnl"),
    "C": ("bll", "bnlreq", "bnl", "bnlopt", "bnlnot", "dc"),
    "D": ("bll", "bnlreq", "gl", "cl"),
    "E": ("bll", "bnlreq", "bnl", "bnlopt", "bnlnot", "dc", "gl", "cl", "enl"),
}
DATATYPE_NAMES: Mapping[str, str] = {
    "A": "Namen natürlicher Personen",
    "B": "sonstige Namen (juristische Personen, Orte, Bezeichnungen)",
    "C": "beliebige Texte aus normativen Zeichen",
    "D": "Namen natürlicher Personen mit griechischen und kyrillischen Buchstaben",
    "E": "beliebige Texte aus allen Zeichen",
}
LINE_BREAKS = frozenset({0x09, 0x0A, 0x0D})

#: Typographic characters a Fachverfahren's text often carries that datatype C lacks, and their replacement.
TYPOGRAPHIC: Mapping[str, str] = {
    "\u2010": "-",  # HYPHEN
    "\u2011": "-",  # NON-BREAKING HYPHEN
    "\u2012": "-",  # FIGURE DASH
    "\u2013": "-",  # EN DASH
    "\u2014": "-",  # EM DASH
    "\u2212": "-",  # MINUS SIGN
    "\u2018": "'",  # LEFT SINGLE QUOTATION MARK
    "\u201a": "'",  # SINGLE LOW-9 QUOTATION MARK
    "\u201c": '"',  # LEFT DOUBLE QUOTATION MARK
    "\u201d": '"',  # RIGHT DOUBLE QUOTATION MARK
    "\u201e": '"',  # DOUBLE LOW-9 QUOTATION MARK
    "\u2026": "...",  # HORIZONTAL ELLIPSIS
    "\u202f": "\u00a0",  # NARROW NO-BREAK SPACE
    "\u2009": " ",  # THIN SPACE
}

#: The SEPA character set (EPC217-08, "Latin character set"): what every bank accepts in a transfer.
SEPA_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/-?:().,'+ ")
#: Replacements applied before diacritics are stripped: German umlauts as in DIN 5007-2 and the letters that
#: carry no combining mark in Unicode.
SEPA_TRANSLITERATION: Mapping[str, str] = {
    "ä": "ae",
    "ö": "oe",
    "ü": "ue",
    "Ä": "Ae",
    "Ö": "Oe",
    "Ü": "Ue",
    "ß": "ss",
    "ẞ": "SS",
    "æ": "ae",
    "Æ": "AE",
    "œ": "oe",
    "Œ": "OE",
    "ø": "o",
    "Ø": "O",
    "ł": "l",
    "Ł": "L",
    "đ": "d",
    "Đ": "D",
    "ð": "d",
    "Ð": "D",
    "þ": "th",
    "Þ": "TH",
    "ı": "i",
    "ħ": "h",
    "Ħ": "H",
    "ŧ": "t",
    "Ŧ": "T",
    "ŋ": "n",
    "Ŋ": "N",
    "ĸ": "k",
    "ŀ": "l",
    "Ŀ": "L",
    "ĳ": "ij",
    "Ĳ": "IJ",
    "&": "+",
    "\u00a0": " ",
    **{key: value for key, value in TYPOGRAPHIC.items() if value in {"-", "'", " "}},
    "\u2019": "'",
    "\u201c": "'",
    "\u201d": "'",
    "\u201e": "'",
    "\u00ab": "'",
    "\u00bb": "'",
    "\u2026": "...",
    "\u00b4": "'",
    "`": "'",
    '"': "'",
    "_": "-",
    ";": ",",
}


@dataclass(frozen=True)
class Entry:
    """One line of the list: a character or a defined sequence."""

    group: str
    text: str
    name: str

    @property
    def is_sequence(self) -> bool:
        return len(self.text) > 1


@cache
def entries(path: Path = LIST_PATH) -> tuple[Entry, ...]:
    """Every character and sequence of the list, in its order."""
    result = []
    for line in path.read_text(encoding="utf-8").splitlines():
        group, _kind, points, name, _shown = line.split("; ", 4)
        if group not in GROUPS:
            raise ValueError(f"{path.name}: unknown group {group!r}")
        text = "".join(chr(int(point, 16)) for point in points.split())
        result.append(Entry(group, text, name))
    return tuple(result)


def characters(datatype: str, *, single_line: bool = False) -> frozenset[str]:
    """The single characters of a datatype (sequences not included)."""
    groups = DATATYPES[datatype]
    chars = {entry.text for entry in entries() if entry.group in groups and not entry.is_sequence}
    if single_line:
        chars -= {chr(point) for point in LINE_BREAKS}
    return frozenset(chars)


def sequences(datatype: str) -> tuple[str, ...]:
    """The defined sequences of a datatype, longest first."""
    groups = DATATYPES[datatype]
    found = {entry.text for entry in entries() if entry.group in groups and entry.is_sequence}
    return tuple(sorted(found, key=lambda text: (-len(text), text)))


_ESCAPE = {"\\": "\\\\", "[": "\\[", "]": "\\]", "^": "\\^", "-": "\\-", "\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _char(char: str) -> str:
    return _ESCAPE.get(char, char)


def _char_class(chars: Iterable[str]) -> str:
    points = sorted(ord(char) for char in chars)
    parts: list[str] = []
    start = previous = points[0]
    for point in [*points[1:], -1]:
        if point == previous + 1:
            previous = point
            continue
        if previous == start:
            parts.append(_char(chr(start)))
        elif previous == start + 1:
            parts.append(_char(chr(start)) + _char(chr(previous)))
        else:
            parts.append(f"{_char(chr(start))}-{_char(chr(previous))}")
        start = previous = point
    return "[" + "".join(parts) + "]"


def unit_pattern(datatype: str, *, single_line: bool = False, xsd: bool = True) -> str:
    """One unit (a character or a defined sequence) of the datatype as a regular expression.

    The same text serves as an XSD pattern (``xsd=True``: plain groups) and as a Python expression (non-capturing
    groups); both dialects read the escapes used here alike.
    """
    alternatives = ["".join(_char(char) for char in sequence) for sequence in sequences(datatype)]
    alternatives.append(_char_class(characters(datatype, single_line=single_line)))
    opening = "(" if xsd else "(?:"
    return opening + "|".join(alternatives) + ")"


def xsd_pattern(datatype: str, *, single_line: bool = False) -> str:
    """The value of the XSD ``pattern`` facet of a text type: one or more units."""
    return unit_pattern(datatype, single_line=single_line) + "+"


@cache
def compiled(datatype: str, *, single_line: bool = False) -> re.Pattern[str]:
    """A unit of the datatype, for scanning a value unit by unit."""
    return re.compile(unit_pattern(datatype, single_line=single_line, xsd=False))


def first_outside(value: str, datatype: str, *, single_line: bool = False) -> str | None:
    """The first character of ``value`` (NFC) that is not part of a unit of the datatype, or None."""
    unit = compiled(datatype, single_line=single_line)
    position = 0
    while position < len(value):
        match = unit.match(value, position)
        if match is None:
            return value[position]
        position = match.end()
    return None


class Rule(StrEnum):
    """What happens to a character outside a field's set."""

    REFUSE = "refuse"
    TYPOGRAPHIC = "typographic"  # TYPOGRAPHIC replaced, the rest refused
    SEPA = "sepa"  # reduced to SEPA_CHARACTERS, what cannot be reduced refused


@dataclass(frozen=True)
class TextRule:
    """The character rule of one field: its DIN SPEC 91379 datatype (or SEPA), lines, and what is transliterated."""

    datatype: str  # "A"–"E", or "SEPA"
    single_line: bool
    rule: Rule

    def describe(self) -> str:
        if self.datatype == "SEPA":
            base = "SEPA-Zeichensatz (EPC217-08)"
        else:
            base = f"DIN SPEC 91379 Datentyp {self.datatype}" + (", einzeilig" if self.single_line else "")
        action = {
            Rule.REFUSE: "andere Zeichen werden zurückgewiesen",
            Rule.TYPOGRAPHIC: "typografische Zeichen werden ersetzt, andere zurückgewiesen",
            Rule.SEPA: "transliteriert (ä → ae, Akzente entfernt), Unübertragbares zurückgewiesen",
        }[self.rule]
        return f"{base}; {action}"


class OutsideCharacterSet(ValueError):
    """A character that the field's rule can neither keep nor transliterate; ``char`` is that one character."""

    def __init__(self, char: str, rule: TextRule) -> None:
        super().__init__(f"U+{ord(char):04X}")
        self.char = char
        self.rule = rule


def apply(value: str, rule: TextRule) -> str:
    """``value`` under ``rule``: NFC, transliterated as the rule says, then checked; raises
    :class:`OutsideCharacterSet` naming the first character that stays outside."""
    value = unicodedata.normalize("NFC", value)
    if rule.rule is Rule.SEPA:
        return to_sepa(value)
    if rule.rule is Rule.TYPOGRAPHIC:
        value = "".join(TYPOGRAPHIC.get(char, char) for char in value)
    outside = first_outside(value, rule.datatype, single_line=rule.single_line)
    if outside is not None:
        raise OutsideCharacterSet(outside, rule)
    return value


def to_sepa(value: str) -> str:
    """``value`` in the SEPA character set: the table first, then diacritics dropped (é → e); a character with no
    such reduction raises :class:`OutsideCharacterSet`."""
    out = []
    for char in unicodedata.normalize("NFC", value):
        if char in SEPA_CHARACTERS:
            out.append(char)
            continue
        replacement = SEPA_TRANSLITERATION.get(char)
        if replacement is None:
            stripped = "".join(c for c in unicodedata.normalize("NFD", char) if not unicodedata.combining(c))
            replacement = stripped if stripped and all(c in SEPA_CHARACTERS for c in stripped) else None
        if replacement is None:
            raise OutsideCharacterSet(char, TextRule("SEPA", True, Rule.SEPA))
        out.append(replacement)
    return "".join(out)


# Prints the XSD patterns for rueckkanal/data/xoev/xantragsstatus-2.0.0.xsd.
if __name__ == "__main__":  # pragma: no cover
    import sys
    from xml.sax.saxutils import quoteattr

    for datatype, single in (("B", True), ("C", True), ("C", False)):
        sys.stdout.write(f"{datatype} single_line={single}:\n{quoteattr(xsd_pattern(datatype, single_line=single))}\n")
