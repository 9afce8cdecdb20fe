"""What a portal's answer means for delivery: the one classification table, as a pure function.

=========================================  =======================================================
HTTP status / answer body                  verdict
=========================================  =======================================================
408                                        transient ``portal_timeout``
429                                        transient ``portal_throttled`` (Retry-After honoured)
425, 5xx                                   transient ``portal_unavailable`` (Retry-After honoured)
Rückweisung 0191, code "gilt als           delivered, ``Receipt.duplicate=True`` (S100: already
zugestellt" in the code list               processed)
Rückweisung 0191, any other code           permanent ``portal_rejected``, the code kept
409 Conflict                               delivered, ``Receipt.duplicate=True``
Quittung 0190                              delivered
any other 2xx                              delivered (no receipt id)
any other status (4xx, 1xx, 3xx)           permanent ``portal_client_error``
=========================================  =======================================================

Transient statuses win over the body: an overloaded gateway's error page says nothing about the message. The body
wins over 409 and 2xx: a Rückweisung sent with 200 is still a Rückweisung.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from adapters.portal.base import Receipt
from rueckkanal.errors import PermanentDeliveryError, Reason, TransientDeliveryError


class AnswerKind(StrEnum):
    QUITTUNG = "quittung"
    RUECKWEISUNG = "rueckweisung"


@dataclass(frozen=True, slots=True)
class Answer:
    """The portal's XÖV answer, reduced to what the route depends on."""

    kind: AnswerKind
    code: str | None = None
    receipt_id: str | None = None


_TRANSIENT_4XX = {408: Reason.PORTAL_TIMEOUT, 425: Reason.PORTAL_UNAVAILABLE, 429: Reason.PORTAL_THROTTLED}


def classify(
    status: int,
    answer: Answer | None,
    *,
    retry_after: float | None,
    received_at: datetime,
    delivered_codes: Collection[str],
) -> Receipt:
    """A :class:`Receipt`, or raise the delivery error the table above names."""
    transient = _transient_reason(status)
    if transient is not None:
        raise TransientDeliveryError(f"portal answered HTTP {status}", reason=transient, retry_after=retry_after)
    if answer is not None and answer.kind is AnswerKind.RUECKWEISUNG:
        if answer.code is not None and answer.code in delivered_codes:
            return Receipt(answer.receipt_id, duplicate=True, status_code=status, received_at=received_at)
        raise PermanentDeliveryError(
            f"portal rejected the message (HTTP {status}, Rückweisungsgrund {answer.code or 'none'})",
            reason=Reason.PORTAL_REJECTED,
            portal_code=answer.code,
        )
    receipt_id = answer.receipt_id if answer is not None else None
    if status == 409:
        return Receipt(receipt_id, duplicate=True, status_code=status, received_at=received_at)
    if (answer is not None and answer.kind is AnswerKind.QUITTUNG) or 200 <= status < 300:
        return Receipt(receipt_id, duplicate=False, status_code=status, received_at=received_at)
    raise PermanentDeliveryError(f"portal answered HTTP {status}", reason=Reason.PORTAL_CLIENT_ERROR)


def _transient_reason(status: int) -> Reason | None:
    if status >= 500:
        return Reason.PORTAL_UNAVAILABLE
    return _TRANSIENT_4XX.get(status)
