"""The pure rules of status-web: texts for every status, the page model, tokens, the GiroCode, the rate limit."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import zxingcpp

from rueckkanal.codelists import codelists
from rueckkanal.epc import MAX_PAYLOAD_BYTES, transfer_for
from rueckkanal.tracking import (
    TOKEN_LENGTH,
    Payment,
    StoredStatus,
    is_token_shaped,
    links_expired,
    new_token,
    token_digest,
)
from streams.status_web.http import girocode
from streams.status_web.page import WiderspruchConfig, build_page
from streams.status_web.ratelimit import RateLimiter, retry_after_header
from streams.status_web.texts import STATUS_TEXTS, Lang

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
PAYMENT = Payment(
    Decimal("96.00"),
    "EUR",
    "Hundesteuer 2024 Kassenzeichen 5212024000123",
    "https://epayment.leipzig.de/hundesteuer?kz=5212024000123",
    date(2026, 4, 15),
    "Stadt Leipzig, Stadtkasse",
    "DE90860555921100000123",
    "WELADE8LXXX",
    "5212024000123",
)
DEFAULT = WiderspruchConfig("https://amt24.sachsen.de/widerspruch", "Gegen diesen Bescheid …")


def step(sequence: int, code: str, **extra: object) -> StoredStatus:
    return StoredStatus(
        vorgang_key="urn:test|V1",
        nachrichten_uuid=f"uuid-{sequence}-{code}",
        sequence=sequence,
        status=code,
        status_text=codelists().antragsstatus.label(code),
        zeitpunkt=T0 + timedelta(days=sequence),
        leistung="99108001000000",
        fachverfahren="hundesteuer",
        **extra,  # type: ignore[arg-type]
    )


def page(steps: list[StoredStatus], lang: Lang = Lang.DE):  # type: ignore[no-untyped-def]
    return build_page(steps, lang, lambda fv, leistung, lang: f"{fv}:{leistung}:{lang.value}", {}, DEFAULT)


def test_every_status_of_the_code_list_has_texts_in_both_languages() -> None:
    assert set(STATUS_TEXTS) == set(codelists().antragsstatus.rows)
    for texts in STATUS_TEXTS.values():
        assert set(texts) == set(Lang)
        assert all(t.title and t.meaning and t.next for t in texts.values())


def test_the_timeline_is_in_sequence_order_whatever_the_arrival_order() -> None:
    steps = [step(1, "100"), step(2, "120"), step(3, "200"), step(4, "220"), step(5, "400", entscheidung="01")]
    shown = page([*random.sample(steps, len(steps)), steps[2]])  # a redelivered message among them
    assert [entry.status for entry in shown.entries] == ["100", "120", "200", "220", "400"]
    assert shown.current is not None and shown.current.title == "Entschieden"
    assert shown.decision == "Ihr Antrag wurde bewilligt."
    assert shown.leistung == "hundesteuer:99108001000000:de"


def test_a_payment_is_open_until_a_later_receipt() -> None:
    requested = [step(1, "100"), step(2, "300", zahlung=PAYMENT)]
    assert page(requested).payment == PAYMENT
    assert page(requested).transfer is not None
    assert page([*requested, step(3, "310")]).payment is None
    assert page(
        [*requested, step(3, "310"), step(4, "400", entscheidung="01"), step(5, "300", zahlung=PAYMENT)]
    ).payment


def test_widerspruch_after_a_decision_with_the_deadline_of_this_decision_only() -> None:
    decided = [step(1, "100"), step(2, "400", entscheidung="03")]
    assert page(decided[:1]).widerspruch is None
    shown = page(decided)
    assert shown.widerspruch is not None and shown.widerspruch.deadline is None
    bekanntgegeben = [*decided, step(3, "410", frist=date(2026, 4, 30), hinweis="Belehrung aus dem Bescheid")]
    widerspruch = page(bekanntgegeben).widerspruch
    assert widerspruch is not None
    assert (widerspruch.deadline, widerspruch.rechtsbehelfsbelehrung) == (
        date(2026, 4, 30),
        "Belehrung aus dem Bescheid",
    )
    assert page([*bekanntgegeben, step(4, "420")]).widerspruch is None  # bestandskräftig: too late
    reopened = [*bekanntgegeben, step(4, "430"), step(5, "440"), step(6, "400", entscheidung="01")]
    again = page(reopened).widerspruch
    assert (
        again is not None and again.deadline is None and again.rechtsbehelfsbelehrung == DEFAULT.rechtsbehelfsbelehrung
    )
    assert page([*reopened, step(7, "510")]).widerspruch is None


def test_a_correction_stands_in_the_place_of_the_status_it_replaces() -> None:
    requested = step(2, "300", zahlung=PAYMENT)
    received = step(3, "310")
    corrected_payment = replace(PAYMENT, betrag=Decimal("12.50"))
    fix_earlier = replace(
        step(4, "300", zahlung=corrected_payment), berichtigt=requested.nachrichten_uuid, aktuell=False
    )
    shown = page([step(1, "100"), requested, received, fix_earlier])
    assert [(entry.status, entry.corrected) for entry in shown.entries] == [
        ("100", False),
        ("300", True),
        ("310", False),
    ]
    assert shown.latest is not None and shown.latest.status == "310"
    fix_current = replace(
        step(4, "310"), status_text="Zahlung eingegangen am 3. Mai", berichtigt=received.nachrichten_uuid
    )
    assert [entry.corrected for entry in page([step(1, "100"), requested, received, fix_current]).entries] == [
        False,
        False,
        True,
    ]


def test_tokens_are_160_random_bits_and_stored_only_as_a_keyed_digest() -> None:
    tokens = {new_token() for _ in range(1000)}
    assert len(tokens) == 1000
    assert all(len(token) == TOKEN_LENGTH and is_token_shaped(token) for token in tokens)
    token = next(iter(tokens))
    assert token_digest(token, b"pepper-a") != token_digest(token, b"pepper-b")
    assert token not in token_digest(token, b"pepper-a")
    assert (
        not is_token_shaped(token[:-1]) and not is_token_shaped(token + "A") and not is_token_shaped("HST-2024-000123")
    )


def test_links_expire_the_configured_time_after_the_final_status() -> None:
    ttl = timedelta(days=90)
    assert not links_expired(None, T0 + timedelta(days=1000), ttl)
    assert not links_expired(T0, T0 + ttl - timedelta(seconds=1), ttl)
    assert links_expired(T0, T0 + ttl, ttl)


def grayscale(matrix: tuple[bytearray, ...], scale: int = 6, border: int = 4) -> memoryview:
    """A QR matrix as an 8-bit grayscale image (dark modules 0, light 255) with a quiet zone."""
    size = (len(matrix) + 2 * border) * scale
    rows = []
    for y in range(size):
        my = y // scale - border
        row = bytearray(b"\xff" * size)
        if 0 <= my < len(matrix):
            for x in range(size):
                mx = x // scale - border
                if 0 <= mx < len(matrix) and matrix[my][mx]:
                    row[x] = 0
        rows.append(bytes(row))
    return memoryview(b"".join(rows)).cast("B", (size, size))


def test_the_girocode_decodes_to_the_payment() -> None:
    transfer = transfer_for(PAYMENT)
    assert transfer is not None
    [decoded] = zxingcpp.read_barcodes(grayscale(girocode(transfer).matrix))
    lines = decoded.text.split("\n")
    assert lines[:4] == ["BCD", "002", "1", "SCT"]
    assert (lines[4], lines[5], lines[6], lines[7]) == (
        "WELADE8LXXX",
        "Stadt Leipzig, Stadtkasse",
        PAYMENT.iban,
        "EUR96",
    )
    assert Decimal(lines[7].removeprefix("EUR")) == PAYMENT.betrag
    assert lines[-1] == PAYMENT.kassenzeichen
    assert len(decoded.bytes) <= MAX_PAYLOAD_BYTES
    assert decoded.text == transfer.payload()


@pytest.mark.parametrize(
    "change",
    [
        {"iban": None},
        {"empfaenger": None},
        {"waehrung": "USD"},
        {"betrag": Decimal("1000000000.00")},
    ],
)
def test_no_girocode_where_the_standard_cannot_carry_the_payment(change: dict[str, object]) -> None:
    from dataclasses import replace

    assert transfer_for(replace(PAYMENT, **change)) is None  # type: ignore[arg-type]


def test_one_client_is_limited_after_its_quota_and_others_are_not() -> None:
    limiter = RateLimiter(10)
    assert all(limiter.check("a", 100.0) is None for _ in range(10))
    wait = limiter.check("a", 100.0)
    assert wait is not None and retry_after_header(wait) == "6"
    assert limiter.check("b", 100.0) is None
    assert limiter.check("a", 106.0) is None
    assert limiter.check("a", 106.0) is not None


def test_the_client_table_is_bounded() -> None:
    limiter = RateLimiter(1, max_clients=100)
    for n in range(1000):
        limiter.check(f"client-{n}", 0.0)
    assert len(limiter._buckets) == 100
