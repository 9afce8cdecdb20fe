"""The classification table of adapters/portal/classify.py, row by row."""

from datetime import UTC, datetime

import pytest

from adapters.portal.base import Receipt
from adapters.portal.classify import classify
from rueckkanal.errors import PermanentDeliveryError, Reason, TransientDeliveryError
from rueckkanal.settings import PortalReceipt
from rueckkanal.xoev import PortalAnswer, Quittung, Rueckweisung, Rueckweisungsgrund

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SENT = "m-uuid"
QUITTUNG = Quittung("a-uuid", SENT, quittung_id="Q-1", eingangszeitpunkt=AT)


def rueckweisung(*codes: str, bezug: str = SENT) -> Rueckweisung:
    return Rueckweisung("a-uuid", bezug, tuple(Rueckweisungsgrund(code) for code in codes))


def run(
    status: int,
    answer: PortalAnswer | None = None,
    retry_after: float | None = None,
    receipt: PortalReceipt = PortalReceipt.QUITTUNG,
) -> Receipt:
    return classify(status, answer, nachrichten_uuid=SENT, retry_after=retry_after, received_at=AT, receipt=receipt)


def misconfigured(status: int, answer: PortalAnswer | None = None, **kwargs: PortalReceipt) -> TransientDeliveryError:
    with pytest.raises(TransientDeliveryError) as caught:
        run(status, answer, **kwargs)
    assert caught.value.reason is Reason.PORTAL_MISCONFIGURED
    return caught.value


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (408, Reason.PORTAL_TIMEOUT),
        (425, Reason.PORTAL_UNAVAILABLE),
        (429, Reason.PORTAL_THROTTLED),
        (500, Reason.PORTAL_UNAVAILABLE),
        (502, Reason.PORTAL_UNAVAILABLE),
        (503, Reason.PORTAL_UNAVAILABLE),
        (504, Reason.PORTAL_UNAVAILABLE),
    ],
)
def test_transient_statuses_keep_retry_after(status: int, reason: Reason) -> None:
    with pytest.raises(TransientDeliveryError) as caught:
        run(status, retry_after=7.0)
    assert caught.value.reason is reason
    assert caught.value.retry_after == 7.0


def test_transient_status_wins_over_a_body_rejection() -> None:
    with pytest.raises(TransientDeliveryError):
        run(503, rueckweisung("X001"))


@pytest.mark.parametrize("status", [200, 201, 202, 204, 409])
def test_2xx_or_409_without_a_readable_answer_is_a_misconfiguration_not_a_delivery(status: int) -> None:
    misconfigured(status)


@pytest.mark.parametrize(("status", "duplicate"), [(200, False), (202, False), (204, False), (409, True)])
def test_receipt_rule_http_2xx_counts_the_status_for_back_channels_without_quittung(
    status: int, duplicate: bool
) -> None:
    receipt = run(status, receipt=PortalReceipt.HTTP_2XX)
    assert (receipt.duplicate, receipt.portal_receipt_id, receipt.status_code) == (duplicate, None, status)


def test_receipt_rule_http_2xx_still_honours_a_rueckweisung_and_the_bezug() -> None:
    with pytest.raises(PermanentDeliveryError):
        run(200, rueckweisung("X001"), receipt=PortalReceipt.HTTP_2XX)
    misconfigured(200, rueckweisung("X001", bezug="other"), receipt=PortalReceipt.HTTP_2XX)
    misconfigured(302, receipt=PortalReceipt.HTTP_2XX)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308, 404, 405, 406, 410, 415, 100])
def test_redirects_wrong_url_and_unacceptable_request_shape_are_misconfiguration(status: int) -> None:
    error = misconfigured(status)
    assert str(status) in error.message


@pytest.mark.parametrize("status", [301, 404, 405])
def test_misconfiguration_wins_over_a_body(status: int) -> None:
    misconfigured(status, QUITTUNG)
    misconfigured(status, rueckweisung("S100"))


@pytest.mark.parametrize("status", [200, 409, 400, 422])
def test_an_answer_about_another_message_is_a_misconfiguration(status: int) -> None:
    other_quittung = Quittung("a-uuid", "another-uuid", quittung_id="Q-9", eingangszeitpunkt=AT)
    misconfigured(status, other_quittung)
    misconfigured(status, rueckweisung("S100", bezug="another-uuid"))
    misconfigured(status, rueckweisung("X001", bezug="another-uuid"))


@pytest.mark.parametrize("status", [400, 422])
def test_a_quittung_with_an_error_status_is_a_misconfiguration(status: int) -> None:
    misconfigured(status, QUITTUNG)


def test_quittung_gives_its_receipt_id() -> None:
    receipt = run(200, QUITTUNG)
    assert receipt.portal_receipt_id == "Q-1"
    assert receipt.duplicate is False
    assert receipt.received_at == AT


@pytest.mark.parametrize("status", [200, 400, 409, 422])
def test_rueckweisung_s100_is_a_duplicate_delivery(status: int) -> None:
    receipt = run(status, rueckweisung("S100"))
    assert receipt.duplicate is True


def test_409_with_its_quittung_is_a_duplicate_delivery() -> None:
    receipt = run(409, QUITTUNG)
    assert (receipt.duplicate, receipt.portal_receipt_id) == (True, "Q-1")


@pytest.mark.parametrize("status", [200, 400, 422])
@pytest.mark.parametrize("code", ["X001", "S011", "AS101"])
def test_any_other_rueckweisung_is_permanent_with_its_code(status: int, code: str) -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        run(status, rueckweisung(code))
    assert caught.value.reason is Reason.PORTAL_REJECTED
    assert caught.value.portal_code == code


def test_first_code_is_kept_and_s100_among_others_still_counts_as_delivered() -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        run(422, rueckweisung("S011", "AS101"))
    assert caught.value.portal_code == "S011"
    assert run(200, rueckweisung("X001", "S100")).duplicate is True


def test_rueckweisung_without_code_is_permanent() -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        run(400, rueckweisung())
    assert caught.value.portal_code is None


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_are_transient_so_the_circuit_opens_instead_of_a_dlq_flood(status: int) -> None:
    with pytest.raises(TransientDeliveryError) as caught:
        run(status)
    assert caught.value.reason is Reason.PORTAL_UNAUTHORIZED


@pytest.mark.parametrize("status", [400, 402, 411, 413, 414, 422, 431, 451])
def test_other_4xx_without_a_readable_answer_are_permanent_client_errors(status: int) -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        run(status)
    assert caught.value.reason is Reason.PORTAL_CLIENT_ERROR
    assert caught.value.portal_code is None


def test_error_text_names_status_and_code_only() -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        run(422, rueckweisung("S011"))
    assert "422" in caught.value.message
    assert "S011" in caught.value.message
