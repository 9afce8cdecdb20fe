"""The XÖV code lists of XAntragsstatus, read from their genericode files.

The genericode files in ``rueckkanal/data/xoev/codelisten/`` (package data, :mod:`rueckkanal.resources`) are the
only place a code, its label or its properties are written down: the model validates against them, the renderer
takes labels and list URIs from them, the lifecycle takes the terminal statuses from them. They are read once per
process (:func:`codelists`) with the safe parser.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import MappingProxyType

from rueckkanal import safexml
from rueckkanal.errors import ConfigError, DecodeError
from rueckkanal.resources import data_path

CODELIST_DIR = data_path("xoev", "codelisten")
_MAX_CODELIST_BYTES = 1024 * 1024


_XOEV_CL = "{http://xoev.de/schemata/genericode/4}"


@dataclass(frozen=True)
class CodeList:
    """One genericode list: its identity (``uri``, ``version``), its rows keyed by the ``code`` column, and the XÖV
    code list metadata (Kennung = ``uri``, Version, Gültigkeit = ``valid_from``, Herausgeber = ``agency``)."""

    uri: str
    version: str
    rows: Mapping[str, Mapping[str, str]]
    name: str = ""
    agency: str = ""
    valid_from: str = ""
    description: str = ""
    version_description: str = ""
    columns: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def __contains__(self, code: object) -> bool:
        return code in self.rows

    def label(self, code: str) -> str:
        return self.rows[code]["label"]

    def value(self, code: str, column: str) -> str | None:
        return self.rows[code].get(column)

    def codes_where(self, column: str, value: str) -> frozenset[str]:
        return frozenset(code for code, row in self.rows.items() if row.get(column) == value)


@dataclass(frozen=True)
class CodeLists:
    """All lists of the standard, by their role."""

    antragsstatus: CodeList
    entscheidungsart: CodeList
    nachrichtentyp: CodeList
    behoerdenkennung_praefix: CodeList
    rueckweisungsgrund: CodeList
    rueckweisungsgruende_xoev: CodeList

    @property
    def all(self) -> tuple[CodeList, ...]:
        return (
            self.antragsstatus,
            self.entscheidungsart,
            self.nachrichtentyp,
            self.behoerdenkennung_praefix,
            self.rueckweisungsgruende_xoev,
            self.rueckweisungsgrund,
        )

    @property
    def by_uri(self) -> Mapping[str, CodeList]:
        return {codelist.uri: codelist for codelist in self.all}

    def rueckweisungsgrund_list(self, code: str) -> CodeList | None:
        """The list a Rückweisung code belongs to: the XÖV list first, then this standard's additions."""
        for codelist in (self.rueckweisungsgruende_xoev, self.rueckweisungsgrund):
            if code in codelist:
                return codelist
        return None

    @property
    def terminal_statuses(self) -> frozenset[str]:
        return self.antragsstatus.codes_where("terminal", "true")


def read_genericode(path: Path) -> CodeList:
    """One genericode 1.0 file as a :class:`CodeList`; a broken file is a :class:`ConfigError`."""
    try:
        root = safexml.parse(path.read_bytes(), max_bytes=_MAX_CODELIST_BYTES)
    except (OSError, DecodeError) as exc:
        raise ConfigError(f"code list {path.name}: {exc}") from None
    uri = root.findtext("Identification/CanonicalUri")
    version = root.findtext("Identification/Version")
    if not uri or not version:
        raise ConfigError(f"code list {path.name}: Identification/CanonicalUri and Version are required")
    rows: dict[str, Mapping[str, str]] = {}
    for row in root.iterfind("SimpleCodeList/Row"):
        values = {value.get("ColumnRef", ""): value.findtext("SimpleValue", "") for value in row.iterfind("Value")}
        code = values.get("code")
        if not code or "label" not in values or code in rows:
            raise ConfigError(f"code list {path.name}: every row needs a unique code and a label")
        rows[code] = MappingProxyType(values)
    columns = {
        column.get("Id", ""): column.findtext("LongName") or column.findtext("ShortName") or ""
        for column in root.iterfind("ColumnSet/Column")
    }
    return CodeList(
        uri=uri,
        version=version,
        rows=MappingProxyType(rows),
        name=root.findtext("Identification/LongName") or "",
        agency=root.findtext("Identification/Agency/LongName") or "",
        valid_from=root.findtext(f"Annotation/Description/{_XOEV_CL}validFrom") or "",
        description=root.findtext(f"Annotation/Description/{_XOEV_CL}codelistDescription") or "",
        version_description=root.findtext(f"Annotation/Description/{_XOEV_CL}versionDescription") or "",
        columns=MappingProxyType(columns),
    )


def load_codelists(directory: Path = CODELIST_DIR) -> CodeLists:
    return CodeLists(
        antragsstatus=read_genericode(directory / "antragsstatus.xml"),
        entscheidungsart=read_genericode(directory / "entscheidungsart.xml"),
        nachrichtentyp=read_genericode(directory / "nachrichtentyp.xml"),
        behoerdenkennung_praefix=read_genericode(directory / "behoerdenkennung.praefix.xml"),
        rueckweisungsgrund=read_genericode(directory / "rueckweisungsgrund.xml"),
        rueckweisungsgruende_xoev=read_genericode(directory / "rueckweisungsgruende.xoev.xml"),
    )


@cache
def codelists() -> CodeLists:
    """The shipped lists, read on first use and kept for the life of the process."""
    return load_codelists()
