"""The ZBP payloads built from our own Statusmeldung: mapping, limits, mailbox rule, and what cannot be built."""

from __future__ import annotations

import json
from typing import Any

import pytest

from adapters.portal.zbp_config import ZbpConfig
from adapters.portal.zbp_payload import (
    Attachment,
    PayloadBuilder,
    canonical_json,
    mailbox_uuid,
    shorten,
    utc_millis,
)
from rueckkanal.codelists import codelists
from rueckkanal.errors import PermanentDeliveryError, Reason
from rueckkanal.lifecycle import VorgangState
from rueckkanal.settings import XoevSettings
from rueckkanal.xoev import MessageRenderer
from tests.unit.factories import event, shipped_fachverfahren

ANTRAG = "3f2b8c1e-5a47-4d0e-9b6a-1c2d3e4f5a61"
MAILBOX = "7f3a9c2e-41d5-4b8a-9e07-5c6d1a2b3f40"


def config(**overrides: Any) -> ZbpConfig:
    return ZbpConfig.model_validate({"signing_key": "/k.pem", "signing_cert": "/c.pem", **overrides})


def xml(**overrides: Any) -> bytes:
    values: dict[str, Any] = {"antragsId": ANTRAG, **overrides}
    ev = event(**values)
    state = VorgangState(status=ev.status, sequence=1, last_event_time=ev.status_time, recent_event_ids=())
    return MessageRenderer(XoevSettings()).render(ev, state).xml


def builder(shortened: list[str] | None = None, **overrides: Any) -> PayloadBuilder:
    sink = shortened if shortened is not None else []
    return PayloadBuilder(
        config(**overrides),
        list(shipped_fachverfahren().values()),
        sender_name="Stadt Leipzig",
        on_shortened=sink.append,
    )


def test_status_payload_maps_every_field_from_the_message_and_the_fachverfahren_config() -> None:
    payloads = builder().build(
        xml(status="120", aktenzeichen="22.3-HSt-2024/0123", zusatzinformation="Bitte Aktenzeichen angeben"),
        "hundesteuer",
    )
    assert payloads.status == {
        "applicationId": ANTRAG,
        "status": codelists().antragsstatus.value("120", "bundid"),
        "publicServiceName": {"de": shipped_fachverfahren()["hundesteuer"].leistungen["99108001000000"].de},
        "senderName": "Stadt Leipzig",
        "createdDate": "2024-03-04T07:12:31.000Z",
        "statusDetails": {"de": codelists().antragsstatus.label("120")},
        "additionalInformation": {"de": "Bitte Aktenzeichen angeben"},
        "reference": "22.3-HSt-2024/0123",
    }
    assert payloads.message is None  # 120 is no mailbox status


@pytest.mark.parametrize("code", sorted(codelists().antragsstatus.rows))
def test_every_status_takes_the_zbp_value_of_the_code_list_column(code: str) -> None:
    assert builder().zbp_status(code) == codelists().antragsstatus.value(code, "bundid")


def test_status_map_overrides_the_code_list() -> None:
    assert builder(status_map={"200": "SUBMITTED"}).zbp_status("200") == "SUBMITTED"


def test_a_status_mapped_to_nothing_is_unsendable_with_its_own_reason() -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        builder(status_map={"100": ""}).build(xml(), "hundesteuer")
    assert caught.value.reason is Reason.ZBP_STATUS_UNMAPPED
    assert caught.value.sent is False


def test_a_message_without_antrags_id_is_unsendable_with_its_own_reason() -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        builder().build(xml(antragsId=None), "hundesteuer")
    assert caught.value.reason is Reason.ZBP_MISSING_ANTRAGS_ID
    assert caught.value.sent is False


def test_a_leistung_without_a_name_is_unsendable_with_its_own_reason() -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        builder().build(xml(leistung="99999999999999"), "hundesteuer")
    assert caught.value.reason is Reason.ZBP_SERVICE_NAME_MISSING


def test_the_fachverfahren_is_found_by_its_uri_when_rk_source_is_missing() -> None:
    payloads = builder().build(xml(), None)
    assert payloads.status["publicServiceName"]["de"] == "Hundesteuer: Anmeldung eines Hundes"


def test_over_long_text_is_shortened_at_a_word_boundary_and_counted_never_refused() -> None:
    shortened: list[str] = []
    long_az = "Az. " + " ".join(["Abschnitt"] * 6)  # 63 characters, the model allows 64
    payloads = builder(shortened).build(xml(aktenzeichen=long_az), "hundesteuer")
    reference = payloads.status["reference"]
    assert len(reference) <= 50
    assert reference.endswith("…")
    assert long_az.startswith(reference[:-1])
    assert long_az[len(reference) - 1] == " "  # cut where a word ended
    assert shortened == ["reference"]


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("kurz", 10, "kurz"),
        ("Straße für Änderungen", 12, "Straße für…"),
        ("Donaudampfschifffahrtsgesellschaft", 10, "Donaudamp…"),  # no blank: cut inside the word
        ("😀" * 5, 3, "😀😀…"),  # code points, not bytes or UTF-16 units
    ],
)
def test_shorten(text: str, limit: int, expected: str) -> None:
    assert shorten(text, limit) == expected
    assert len(shorten(text, limit)) <= limit


def test_created_date_is_utc_with_milliseconds_and_z() -> None:
    from datetime import datetime

    assert utc_millis(datetime.fromisoformat("2024-03-21T07:45:00.5+01:00")) == "2024-03-21T06:45:00.500Z"


@pytest.mark.parametrize(
    ("postfach", "expected"),
    [
        (f"bundid:postfach:{MAILBOX}", MAILBOX),
        (MAILBOX.upper(), MAILBOX),
        ("bundid:postfach:7f3a9c2e", None),  # not a UUID
        ("amt24:postfach:4711-bwp", None),  # another portal's mailbox
        (f"amt24:postfach:{MAILBOX}", None),  # a UUID behind another prefix is not a BundID mailbox
        (None, None),
    ],
)
def test_mailbox_rule(postfach: str | None, expected: str | None) -> None:
    assert mailbox_uuid(postfach, "bundid:postfach:") == expected


def test_mailbox_message_for_a_payment_request_with_a_bundid_mailbox() -> None:
    zahlung = {"betrag": "96.00", "verwendungszweck": "Hundesteuer 2024 Kassenzeichen 5212024000123"}
    payloads = builder().build(
        xml(status="300", zahlung=zahlung, postfachReferenz=f"bundid:postfach:{MAILBOX}", aktenzeichen="AZ-1"),
        "hundesteuer",
    )
    message = payloads.message
    assert message is not None
    assert message["mailboxUuid"] == MAILBOX
    assert message["applicationId"] == ANTRAG
    assert message["sender"] == "Stadt Leipzig"
    assert message["service"] == "Hundesteuer: Anmeldung eines Hundes"
    assert message["title"] == f"{codelists().antragsstatus.label('300')}: Hundesteuer: Anmeldung eines Hundes"
    assert message["reference"] == "AZ-1"
    assert message["stork_qaa_level"] == 3
    assert "96,00 EUR" in message["content"]
    assert "Kassenzeichen 5212024000123" in message["content"]


def test_no_mailbox_message_without_a_bundid_mailbox_or_for_other_statuses() -> None:
    assert (
        builder().build(xml(status="300", zahlung={"betrag": "1.00", "verwendungszweck": "x"}), "hundesteuer").message
        is None
    )
    assert builder().build(xml(postfachReferenz=MAILBOX), "hundesteuer").message is None  # 100


def test_attachments_enter_the_payload_as_name_sha512_and_size() -> None:
    manifest = Attachment("bescheid.pdf", b"%PDF-1.7 ...").manifest()
    assert manifest["filename"] == "bescheid.pdf"
    assert manifest["contentLength"] == 12
    assert len(manifest["sha512sum"]) == 128


def test_the_same_message_builds_the_same_content() -> None:
    message = xml(status="120", aktenzeichen="AZ-7")
    first = canonical_json(builder().build(message, "hundesteuer").status)
    again = canonical_json(builder().build(message, "hundesteuer").status)
    assert first == again
    assert json.loads(first)["reference"] == "AZ-7"


def correction_xml(current: bool, **overrides: Any) -> bytes:
    """A Statusberichtigung 0102 of event evt-1 (a 300), rendered with the state the lifecycle would leave."""
    values: dict[str, Any] = {"antragsId": ANTRAG, "eventId": "evt-2", "berichtigtEventId": "evt-1", **overrides}
    ev = event(**values)
    state = VorgangState(
        status=ev.status,
        sequence=3,
        last_event_time=ev.status_time,
        recent_event_ids=("evt-1", "evt-9", "evt-2"),
        recent_statuses=(ev.status, "310", ev.status),
        current_event_id="evt-2" if current else "evt-9",
    )
    return MessageRenderer(XoevSettings()).render(ev, state).xml


PAYMENT = {
    "status": "300",
    "postfachReferenz": f"bundid:postfach:{MAILBOX}",
    "zahlung": {"betrag": "90.00", "verwendungszweck": "Hundesteuer 2025"},
}


def test_a_correction_of_the_current_status_updates_the_monitor_and_resends_the_letter_marked() -> None:
    payloads = builder().build(correction_xml(True, **PAYMENT), "hundesteuer")
    assert payloads.status is not None and payloads.status["status"] == "ACTION_REQUIRED"
    assert payloads.message is not None and payloads.message["title"].startswith("Berichtigung: Zahlung angefordert")


def test_a_correction_of_an_earlier_status_never_overwrites_the_monitor_only_the_letter_is_sent() -> None:
    payloads = builder().build(correction_xml(False, **PAYMENT), "hundesteuer")
    assert payloads.status is None
    assert payloads.message is not None and "Berichtigung" in payloads.message["title"]
    assert "90" in payloads.message["content"]
    quiet = builder().build(correction_xml(False, status="200"), "hundesteuer")
    assert (quiet.status, quiet.message) == (None, None)  # nothing the ZBP can show
