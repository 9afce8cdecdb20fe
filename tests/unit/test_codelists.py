"""The genericode lists: well-formed, consistent with the XSD and the design's status table."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from rueckkanal.codelists import CODELIST_DIR, codelists, read_genericode
from rueckkanal.errors import ConfigError
from rueckkanal.settings import PROJECT_ROOT
from rueckkanal.xoev import XSD_PATH

XS = "{http://www.w3.org/2001/XMLSchema}"


def test_the_revised_status_table() -> None:
    statuses = codelists().antragsstatus
    assert statuses.version == "2"
    assert list(statuses.rows) == [
        "100", "110", "120", "200", "210", "220", "230", "300", "310",
        "400", "410", "420", "430", "440", "450", "500", "510",
    ]  # fmt: skip
    assert codelists().terminal_statuses == {"420", "500", "510"}
    assert statuses.value("210", "bundid") == "ACTION_REQUIRED"
    assert {code: statuses.value(code, "bundid") for code in ("400", "410", "420", "430", "440", "450")} == {
        "400": "COMPLETED",
        "410": "COMPLETED",
        "420": "COMPLETED",
        "430": "PROCESSING",
        "440": "COMPLETED",
        "450": "COMPLETED",
    }


def test_every_list_carries_xoev_metadata() -> None:
    for codelist in codelists().all:
        assert codelist.name and codelist.agency and codelist.description and codelist.version_description
        assert len(codelist.valid_from) == 10 and codelist.valid_from[4] == "-"


def test_every_label_fits_the_status_text() -> None:
    assert all(len(row["label"]) <= 50 for row in codelists().antragsstatus.rows.values())


def test_every_code_type_of_the_xsd_fixes_a_shipped_list_and_its_version_as_optional_attributes() -> None:
    schema = etree.parse(str(XSD_PATH))
    fixed = {}
    for complex_type in schema.iter(f"{XS}complexType"):
        attributes = {a.get("name"): a for a in complex_type.iter(f"{XS}attribute")}
        if "listURI" in attributes and attributes["listURI"].get("fixed"):
            assert {attributes[name].get("use") for name in ("listURI", "listVersionID")} == {"optional"}
            fixed[attributes["listURI"].get("fixed")] = attributes["listVersionID"].get("fixed")
    shipped = {codelist.uri: codelist.version for codelist in codelists().all}
    assert fixed == shipped


def test_rueckweisung_codes_come_from_the_xoev_list_and_ours_never_share_its_form() -> None:
    lists = codelists()
    assert lists.rueckweisungsgrund_list("X001") is lists.rueckweisungsgruende_xoev
    assert lists.rueckweisungsgrund_list("AS104") is lists.rueckweisungsgrund
    assert lists.rueckweisungsgrund_list("S101") is None  # version 1's own S-code is gone
    xoev_form = {code[0] + str(len(code)) for code in lists.rueckweisungsgruende_xoev.rows}
    assert not {code[0] + str(len(code)) for code in lists.rueckweisungsgrund.rows} & xoev_form


def test_every_list_file_is_loaded() -> None:
    assert len(list(CODELIST_DIR.glob("*.xml"))) == len(codelists().by_uri)


def test_a_broken_list_is_a_config_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.xml"
    broken.write_text('<gc:CodeList xmlns:gc="http://docs.oasis-open.org/codelist/ns/genericode/1.0/"/>')
    with pytest.raises(ConfigError):
        read_genericode(broken)


def test_the_readme_status_table_matches_the_code_list() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    for code, row in codelists().antragsstatus.rows.items():
        assert f"| {code} | {row['label']} |" in readme
