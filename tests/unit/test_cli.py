"""The contract commands of the CLI: render, validate, check-config; exit codes 0 ok, 1 invalid, 2 usage."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree
from typer.testing import CliRunner

from rueckkanal.xoev import xsd
from streams.cli import cli
from tests.unit.factories import EXAMPLES_DIR, FACHVERFAHREN_DIR, FIXTURES_DIR

RUNNER = CliRunner()
SAMPLE = EXAMPLES_DIR / "bewohnerparken" / "bwp-004711-05-geb.json"
GOLDEN = FIXTURES_DIR / "golden" / "bewohnerparken" / "bwp-004711-05-geb.xml"


@pytest.fixture(autouse=True)
def shipped_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RK_FACHVERFAHREN_DIR", str(FACHVERFAHREN_DIR))


def test_render_prints_a_valid_statusmeldung_with_the_given_sequence() -> None:
    result = RUNNER.invoke(cli, ["render", str(SAMPLE), "--sequence", "5"])
    assert result.exit_code == 0, result.output
    root = etree.fromstring(result.stdout.encode())
    assert xsd().validate(root)
    assert root.findtext(".//sequenznummer") == "5"
    assert root.findtext(".//status/code") == "300"


def test_render_of_a_refused_record_is_invalid_input(tmp_path: Path) -> None:
    sample = tmp_path / "hundesteuer" / "unknown.json"
    sample.parent.mkdir()
    text = (EXAMPLES_DIR / "hundesteuer" / "hst-000123-01-100.json").read_text()
    sample.write_text(text.replace('"status": "100"', '"status": "999"'))
    result = RUNNER.invoke(cli, ["render", str(sample)])
    assert result.exit_code == 1
    assert "unknown_status" in result.stderr


def test_render_of_a_file_that_is_no_sample_is_invalid_input() -> None:
    result = RUNNER.invoke(cli, ["render", str(FIXTURES_DIR / "bad" / "malformed.json"), "--source", "hundesteuer"])
    assert result.exit_code == 1


def test_render_for_an_unknown_fachverfahren_is_a_usage_error() -> None:
    assert RUNNER.invoke(cli, ["render", str(SAMPLE), "--source", "marktstand"]).exit_code == 2


def test_render_of_a_missing_file_is_a_usage_error() -> None:
    assert RUNNER.invoke(cli, ["render", "no-such-file.json"]).exit_code == 2


def test_validate_accepts_a_golden_message() -> None:
    result = RUNNER.invoke(cli, ["validate", str(GOLDEN)])
    assert result.exit_code == 0
    assert "antragsstatus.statusmeldung.0100" in result.stdout


def test_validate_reports_schema_errors_with_line_numbers(tmp_path: Path) -> None:
    broken = tmp_path / "broken.xml"
    broken.write_bytes(GOLDEN.read_bytes().replace(b">30.70<", b">30.701<"))
    result = RUNNER.invoke(cli, ["validate", str(broken)])
    assert result.exit_code == 1
    line = next(n for n, text in enumerate(GOLDEN.read_text().splitlines(), 1) if "30.70" in text)
    assert f"Zeile / line {line}: Element 'betrag'" in result.stderr


def test_validate_reports_unknown_codes(tmp_path: Path) -> None:
    unknown = tmp_path / "unknown.xml"
    unknown.write_bytes(GOLDEN.read_bytes().replace(b"<code>300</code>", b"<code>399</code>"))
    result = RUNNER.invoke(cli, ["validate", str(unknown)])
    assert result.exit_code == 1
    assert "code 399 is not in urn:xoev-de:rueckkanal:codeliste:antragsstatus" in result.stderr


def test_validate_refuses_a_doctype() -> None:
    result = RUNNER.invoke(cli, ["validate", str(FIXTURES_DIR / "bad" / "xml-xxe.xml")])
    assert result.exit_code == 1
    assert "xml_forbidden_construct" in result.stderr


def test_check_config_lists_the_fachverfahren() -> None:
    result = RUNNER.invoke(cli, ["check-config"])
    assert result.exit_code == 0, result.output
    assert {"hundesteuer", "bewohnerparken", "gewerberegister"} <= set(result.stdout.split())


def test_check_config_reports_every_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "eins.yaml").write_text("name: eins\nformat: cloudevents\n")
    (tmp_path / "zwei.yaml").write_text("name: [\n")
    monkeypatch.setenv("RK_FACHVERFAHREN_DIR", str(tmp_path))
    result = RUNNER.invoke(cli, ["check-config"])
    assert result.exit_code == 1
    assert "eins.yaml: topic" in result.stderr
    assert "zwei.yaml: not valid YAML" in result.stderr


def test_check_config_of_an_empty_directory_is_invalid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RK_FACHVERFAHREN_DIR", str(tmp_path))
    assert RUNNER.invoke(cli, ["check-config"]).exit_code == 1
