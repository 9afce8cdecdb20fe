"""The Fachverfahren registry: the shipped files load, and every problem of a directory is reported at once."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from adapters.inbound.cloudevents import CloudEventsAdapter
from adapters.inbound.config import FachverfahrenConfigError, build_adapter, load_fachverfahren
from adapters.inbound.mapped_json import MappedJsonAdapter
from adapters.inbound.mapped_xml import MappedXmlAdapter
from tests.unit.factories import FACHVERFAHREN_DIR

MAPPED = """name: {name}
topic: fv.{name}.status
source: urn:de:leipzig:fachverfahren:{name}
format: mapped_json
mapping:
  leistung: "99108001000000"
  fields: {{vorgangId: a, status: b, statusZeit: c}}
"""


def problems(directory: Path) -> tuple[str, ...]:
    with pytest.raises(FachverfahrenConfigError) as caught:
        load_fachverfahren(directory)
    return caught.value.problems


def test_the_shipped_configuration_loads_with_one_adapter_per_format() -> None:
    adapters = {config.name: build_adapter(config) for config in load_fachverfahren(FACHVERFAHREN_DIR)}
    assert isinstance(adapters["hundesteuer"], CloudEventsAdapter)
    assert isinstance(adapters["bewohnerparken"], MappedJsonAdapter)
    assert isinstance(adapters["gewerberegister"], MappedXmlAdapter)


def test_all_problems_of_all_files_are_reported_together(tmp_path: Path) -> None:
    shutil.copy(FACHVERFAHREN_DIR / "hundesteuer.yaml", tmp_path)
    (tmp_path / "kaputt.yaml").write_text("name: kaputt\n  topic: [unclosed\n")
    (tmp_path / "marktstand.yaml").write_text(
        MAPPED.format(name="marktstand").replace("status: b", "status: b, frist: d")
        + "  status_map: {EING: '100', X: '999'}\n  timezone: Mars/Olympus\n"
    )
    (tmp_path / "falscher_name.yaml").write_text(MAPPED.format(name="teilhabe"))
    (tmp_path / "teilhabe.yaml").write_text(MAPPED.format(name="teilhabe"))
    found = "\n".join(problems(tmp_path))
    assert "kaputt.yaml: not valid YAML (line 2)" in found
    assert "marktstand.yaml: mapping.mapped_json.status_map" in found and "999" in found
    assert "Mars/Olympus" in found
    assert "must equal the file name" in found
    assert "topic 'fv.teilhabe.status' is also used" in found


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        (MAPPED.format(name="vater").replace("statusZeit: c", "aktenzeichen: c"), "statusZeit"),
        (MAPPED.format(name="vater").replace('  leistung: "99108001000000"\n', ""), "leistung"),
        (MAPPED.format(name="vater").replace("mapped_json", "mapped_xml").replace("a,", "'//[',"), "XPath"),
        (MAPPED.format(name="vater").replace("mapped_json", "csv"), "format"),
        (MAPPED.format(name="vater").replace("fv.vater.status", "fv vater"), "topic"),
        (MAPPED.format(name="vater") + "unknown_key: 1\n", "unknown_key"),
    ],
)
def test_a_broken_file_names_its_problem(tmp_path: Path, yaml_text: str, expected: str) -> None:
    (tmp_path / "vater.yaml").write_text(yaml_text)
    assert expected in "\n".join(problems(tmp_path))


def test_a_missing_directory_is_reported(tmp_path: Path) -> None:
    assert "not a directory" in problems(tmp_path / "nowhere")[0]


def test_every_shipped_fachverfahren_names_the_leistungen_of_its_examples() -> None:
    """The status page, the mailbox and the status monitor show the Leistung by name, never by its key."""
    import json

    from adapters.inbound.config import load_fachverfahren
    from rueckkanal.resources import data_path
    from rueckkanal.settings import PROJECT_ROOT

    configs = {fv.name: fv for fv in load_fachverfahren(data_path("fachverfahren"))}
    for name, fv in configs.items():
        keys = set(fv.leistungen)
        fixed = getattr(fv.mapping, "leistung", None)
        if fixed is not None:
            assert fixed in keys, name
        for example in (PROJECT_ROOT / "config" / "examples" / name).glob("*.json"):
            value = json.loads(example.read_text(encoding="utf-8"))["value"]
            leistung = value.get("leistung") if isinstance(value, dict) else None
            if leistung is not None:
                assert leistung in keys, (name, example.name)
        assert fixed is not None or any((PROJECT_ROOT / "config" / "examples" / name).glob("*.json"))
        assert all(1 <= len(n.de) <= 100 for n in fv.leistungen.values())
