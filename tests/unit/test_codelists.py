"""The genericode lists: well-formed, consistent with the XSD and the design's status table."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from rueckkanal.codelists import CODELIST_DIR, codelists, read_genericode
from rueckkanal.errors import ConfigError
from rueckkanal.xoev import XSD_PATH

XS = "{http://www.w3.org/2001/XMLSchema}"


def test_the_design_status_table() -> None:
    statuses = codelists().antragsstatus
    assert list(statuses.rows) == [
        "100", "110", "120", "200", "210", "220", "230", "300", "310", "400", "410", "420", "430", "500", "510",
    ]  # fmt: skip
    assert codelists().terminal_statuses == {"410", "500", "510"}
    assert statuses.value("210", "bundid") == "ACTION_REQUIRED"
    assert statuses.value("420", "bundid") == "COMPLETED"


def test_every_label_fits_the_status_text() -> None:
    assert all(len(row["label"]) <= 50 for row in codelists().antragsstatus.rows.values())


def test_every_fixed_list_uri_of_the_xsd_names_a_shipped_list_and_version() -> None:
    schema = etree.parse(str(XSD_PATH))
    fixed = {
        attribute.get("name"): attribute.get("fixed")
        for attribute in schema.iter(f"{XS}attribute")
        if attribute.get("fixed") and attribute.get("name") in ("listURI", "listVersionID")
    }
    uris = {a.get("fixed") for a in schema.iter(f"{XS}attribute") if a.get("name") == "listURI" and a.get("fixed")}
    by_uri = codelists().by_uri
    assert uris == set(by_uri)
    assert fixed["listVersionID"] == "1"
    assert {codelist.version for codelist in by_uri.values()} == {"1"}


def test_rueckweisung_s100_counts_as_delivered() -> None:
    grund = codelists().rueckweisungsgrund
    assert grund.codes_where("gilt_als_zugestellt", "true") == {"S100"}
    assert grund.label("X001") == "Nachricht schemaungültig"


def test_every_list_file_is_loaded() -> None:
    assert len(list(CODELIST_DIR.glob("*.xml"))) == len(codelists().by_uri)


def test_a_broken_list_is_a_config_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.xml"
    broken.write_text('<gc:CodeList xmlns:gc="http://docs.oasis-open.org/codelist/ns/genericode/1.0/"/>')
    with pytest.raises(ConfigError):
        read_genericode(broken)


def test_the_readme_status_table_matches_the_code_list() -> None:
    readme = (CODELIST_DIR.parent.parent.parent / "README.md").read_text(encoding="utf-8")
    for code, row in codelists().antragsstatus.rows.items():
        assert f"| {code} | {row['label']} |" in readme
