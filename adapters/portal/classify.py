"""What a portal's answer means for delivery: the one classification table, as a pure function.

=========================================  =======================================================
HTTP status / answer body                  verdict
=========================================  =======================================================
408                                        transient ``portal_timeout``
429                                        transient ``portal_throttled`` (Retry-After honoured)
401, 403                                   transient ``portal_unauthorized``: our credentials, not the message,
                                           are wrong; every message would fail alike, so the circuit
                                           opens and an operator fixes the secret (no DLQ flood)
425, 5xx                                   transient ``portal_unavailable`` (Retry-After honoured)
Rückweisung 0191 with a code that "gilt    delivered, ``Receipt.duplicate=True`` (S100: already
als zugestellt" in the code list           processed)
Rückweisung 0191, other codes              permanent ``portal_rejected``, the first code kept
409 Conflict                               delivered, ``Receipt.duplicate=True``
Quittung 0190                              delivered
any other 2xx                              delivered (no receipt id)
any other status (4xx, 1xx, 3xx)           permanent ``portal_client_error``
=========================================  =======================================================

Transient statuses win over the body: an overloaded gateway's error page says nothing about the message. The body
wins over 409 and 2xx: a Rückweisung sent with 200 is still a Rückweisung.
"""

from __future__ import annotations

from datetime import datetime

from adapters.portal.base import Receipt
from rueckkanal.errors import PermanentDeliveryError, Reason, TransientDeliveryError
from rueckkanal.xoev import PortalAnswer, Quittung, Rueckweisung

_TRANSIENT_4XX = {
    401: Reason.PORTAL_UNAUTHORIZED,
    403: Reason.PORTAL_UNAUTHORIZED,
    408: Reason.PORTAL_TIMEOUT,
    425: Reason.PORTAL_UNAVAILABLE,
    429: Reason.PORTAL_THROTTLED,
}


def classify(status: int, answer: PortalAnswer | None, *, retry_after: float | None, received_at: datetime) -> Receipt:
    """A :class:`Receipt`, or raise the delivery error the table above names.

    ``answer`` is the parsed body, or None when there was none or it was not a readable 0190/0191.
    """
    transient = transient_reason(status)
    if transient is not None:
        raise TransientDeliveryError(f"portal answered HTTP {status}", reason=transient, retry_after=retry_after)
    if isinstance(answer, Rueckweisung):
        if answer.gilt_als_zugestellt:
            return Receipt(None, duplicate=True, status_code=status, received_at=received_at)
        code = answer.gruende[0].code if answer.gruende else None
        raise PermanentDeliveryError(
            f"portal rejected the message (HTTP {status}, Rückweisungsgrund {code or 'none'})",
            reason=Reason.PORTAL_REJECTED,
            portal_code=code,
        )
    receipt_id = answer.quittung_id if isinstance(answer, Quittung) else None
    if status == 409:
        return Receipt(receipt_id, duplicate=True, status_code=status, received_at=received_at)
    if isinstance(answer, Quittung) or 200 <= status < 300:
        return Receipt(receipt_id, duplicate=False, status_code=status, received_at=received_at)
    raise PermanentDeliveryError(f"portal answered HTTP {status}", reason=Reason.PORTAL_CLIENT_ERROR)


def transient_reason(status: int) -> Reason | None:
    """The reason code if ``status`` means "try again later", else None."""
    if status >= 500:
        return Reason.PORTAL_UNAVAILABLE
    return _TRANSIENT_4XX.get(status)


def is_transient(status: int) -> bool:
    return transient_reason(status) is not None
