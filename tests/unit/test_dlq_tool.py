"""``rueckkanal dlq``: where a replay may write, and what ``show`` lets a person read."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from rueckkanal.settings import Settings
from streams import dlq_tool
from streams.dlq import H_PARTITION, H_STAGE, H_TOPIC
from streams.dlq_tool import DeadLetter, Refused, masked_body, replay_partition, replay_target

SOURCES = frozenset({"fv.hundesteuer.status", "fv.bewohnerparken.status"})
OUTBOX = Settings().topics.outbox


def _letter(*headers: tuple[str, bytes], offset: int = 7, value: bytes | None = b"<xml/>") -> DeadLetter:
    return DeadLetter(partition=0, offset=offset, key=b"vorgang-key", value=value, headers=list(headers))


def test_a_delivery_failure_goes_back_to_its_outbox_partition() -> None:
    letter = _letter((H_STAGE, b"delivery"), (H_TOPIC, OUTBOX.encode()), (H_PARTITION, b"5"))
    assert replay_target(letter, Settings(), SOURCES) == OUTBOX
    assert replay_partition(letter, range(12)) == 5


@pytest.mark.parametrize("stage", [b"ingest", b"lifecycle"])
def test_an_ingest_failure_goes_back_to_its_configured_source_topic_and_partition(stage: bytes) -> None:
    letter = _letter((H_STAGE, stage), (H_TOPIC, b"fv.hundesteuer.status"), (H_PARTITION, b"3"))
    assert replay_target(letter, Settings(), SOURCES) == "fv.hundesteuer.status"
    assert replay_partition(letter, range(6)) == 3


def test_the_key_decides_when_the_original_partition_is_unknown_or_gone() -> None:
    assert replay_partition(_letter((H_STAGE, b"ingest")), range(6)) is None
    assert replay_partition(_letter((H_PARTITION, b"-1")), range(6)) is None
    assert replay_partition(_letter((H_PARTITION, b"9")), range(6)) is None
    assert replay_partition(_letter((H_PARTITION, b"x")), range(6)) is None


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ([(H_STAGE, b"ingest"), (H_TOPIC, OUTBOX.encode())], "never goes to the outbox"),
        ([(H_STAGE, b"lifecycle"), (H_TOPIC, b"rueckkanal.events")], "not a configured Fachverfahren topic"),
        ([(H_STAGE, b"ingest"), (H_TOPIC, b"some.other.topic")], "not a configured Fachverfahren topic"),
        ([(H_STAGE, b"ingest")], "not a configured Fachverfahren topic"),
        ([(H_STAGE, b"portal"), (H_TOPIC, b"fv.hundesteuer.status")], "rk.error.stage"),
        ([(H_TOPIC, b"fv.hundesteuer.status")], "rk.error.stage"),
        ([(H_STAGE, b"ingest"), (H_TOPIC, b"fv.hundesteuer.status"), (H_PARTITION, b"x")], "not a partition"),
        ([(H_STAGE, b"delivery"), (H_PARTITION, b"1 ")], "not a partition"),
        (
            [(H_STAGE, b"ingest"), (H_TOPIC, b"fv.hundesteuer.status"), ("rk.original.sha256", b"ab" * 32)],
            "nothing to replay",
        ),
    ],
)
def test_replay_refuses_targets_the_failed_stage_does_not_allow(headers: list[tuple[str, bytes]], why: str) -> None:
    target = replay_target(_letter(*headers), Settings(), SOURCES)
    assert isinstance(target, Refused)
    assert why in target.why


def test_the_last_header_of_a_name_counts_whatever_its_case() -> None:
    letter = _letter((H_STAGE, b"ingest"), (H_TOPIC, OUTBOX.encode()), ("RK.Original.Topic", b"fv.hundesteuer.status"))
    assert replay_target(letter, Settings(), SOURCES) == "fv.hundesteuer.status"


def test_replay_writes_the_allowed_lists_the_refused_and_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    allowed = _letter((H_STAGE, b"ingest"), (H_TOPIC, b"fv.hundesteuer.status"), offset=1)
    forged = _letter((H_STAGE, b"ingest"), (H_TOPIC, OUTBOX.encode()), offset=2)
    delivery = _letter((H_STAGE, b"delivery"), offset=3)
    replayed: list[tuple[str, str]] = []

    async def replay(settings: Settings, planned: Any, rate: float | None) -> int:
        replayed.extend((letter.id, target) for letter, target in planned)
        return len(replayed)

    monkeypatch.setattr(dlq_tool, "_selected", lambda settings, filters: iter([allowed, forged, delivery]))
    monkeypatch.setattr(dlq_tool, "source_topics", lambda settings: SOURCES)
    monkeypatch.setattr(dlq_tool, "replay", replay)
    runner = CliRunner()

    dry = runner.invoke(dlq_tool.dlq_cli, ["replay", "--dry-run"])
    assert dry.exit_code == 1
    assert "refusing 0:2: an ingest failure never goes to the outbox" in dry.output
    assert f"would replay 0:3 → {OUTBOX}" in dry.output
    assert replayed == []

    real = runner.invoke(dlq_tool.dlq_cli, ["replay"])
    assert real.exit_code == 1
    assert replayed == [("0:1", "fv.hundesteuer.status"), ("0:3", OUTBOX)]
    assert "refusing 0:2" in real.output


# -- masking ---------------------------------------------------------------------------------------------------

PERSON = "Erika Mustermann"


def test_json_shows_codes_and_times_and_masks_the_rest_by_shape() -> None:
    body = {
        "status": "200",
        "statusZeit": "2024-03-04T08:00:00+01:00",
        "vorgangId": "HST-2024-000911",
        "hinweistext": PERSON,
        "zahlung": {"betrag": 96.5, "waehrung": "EUR"},
    }
    shown = masked_body(json.dumps(body).encode())
    assert '"status": "200"' in shown
    assert '"statusZeit": "2024-03-04T08:00:00+01:00"' in shown
    assert '"waehrung": "EUR"' in shown
    assert '"vorgangId": "*** (15 chars)"' in shown
    assert '"betrag": "*** (number)"' in shown
    assert PERSON not in shown and "HST-2024" not in shown and "96.5" not in shown


@pytest.mark.parametrize(
    "body",
    [
        {"status": {"name": PERSON}},
        {"status": [PERSON[:200] + "\n"]},
        {"code": {"code": {"Erika": "Mustermann"}}},
        {PERSON: "200"},
        {"data": {"Musterstraße 1, 04109 Leipzig": True}},
        {"status": ["200", {"vorname": PERSON}]},
    ],
)
def test_json_values_under_safe_names_in_the_wrong_place_and_sender_s_names_stay_hidden(body: Any) -> None:
    shown = masked_body(json.dumps(body).encode())
    assert "Erika" not in shown and "Mustermann" not in shown and "Musterstraße" not in shown
    assert "vorname" not in shown


def test_unknown_field_names_are_shown_as_placeholders() -> None:
    shown = masked_body(json.dumps({"a": 1, "b": "x", "status": "100"}).encode())
    assert shown.count("(field)") == 2
    assert '"status": "100"' in shown


XML = f"""<?xml version="1.0" encoding="UTF-8"?>
<?xml-stylesheet href="{PERSON}.xsl"?>
<xas:antragsstatus.statusmeldung.0100 xmlns:xas="urn:xoev-de:rueckkanal" produkt="{PERSON}">
  <!-- Antragsteller: {PERSON} -->
  <status listURI="urn:xoev-de:rueckkanal:codeliste:antragsstatus" listVersionID="1">
    <code>200</code>
    <name>{PERSON}</name>
  </status>
  <code kontakt="{PERSON}">410</code>
  <zeitpunkt>2024-03-04T08:00:00+01:00</zeitpunkt>
  <antragsteller geburtsname="{PERSON}"><![CDATA[{PERSON} <b>]]></antragsteller>
  <status><name>{PERSON}</name></status>
  <statusText>Eingang<b>{PERSON}</b>Mustermann-Tail</statusText>
</xas:antragsstatus.statusmeldung.0100>
""".encode()


def test_xml_shows_allow_listed_leaves_and_masks_attributes_cdata_comments_and_tails() -> None:
    shown = masked_body(XML)
    assert "Erika" not in shown and "Mustermann" not in shown
    assert "<code>200</code>" in shown
    assert "<zeitpunkt>2024-03-04T08:00:00+01:00</zeitpunkt>" in shown
    assert 'listURI="urn:xoev-de:rueckkanal:codeliste:antragsstatus"' in shown
    assert "(element)" in shown  # antragsteller, b: names the sender chose
    assert '(attribute)="*** (16 chars)"' in shown
    assert "antragsteller" not in shown and "geburtsname" not in shown and "kontakt" not in shown
    assert "Antragsteller" not in shown and "xml-stylesheet" not in shown  # comment and processing instruction


@pytest.mark.parametrize(
    "body",
    [
        b"<a><b>Erika Mustermann</a>",
        b'<!DOCTYPE a [<!ENTITY e "Erika Mustermann">]><a>&e;</a>',
        b"Erika Mustermann, Musterstr. 1",
    ],
)
def test_an_unparseable_body_shows_only_its_size(body: bytes) -> None:
    shown = masked_body(body)
    assert shown == f"({len(body)} bytes, not parseable as JSON or XML)"
