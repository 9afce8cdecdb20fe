"""What a portal's answer means for delivery: the one classification table, as a pure function.

A message counts as delivered only with a readable XÖV answer about *this* message (its Bezug names the
nachrichtenUUID sent), or, for a back channel without Quittungen, under the receipt rule ``http_2xx``. Whatever
would fail every message alike (a wrong URL, a proxy page, a redirect) is a misconfiguration: transient, so the
circuit opens and an operator is alerted, instead of the DLQ filling with messages that are fine.

=========================================  =======================================================
HTTP status / answer body                  verdict
=========================================  =======================================================
408                                        transient ``portal_timeout``
429                                        transient ``portal_throttled`` (Retry-After honoured)
401, 403                                   transient ``portal_unauthorized``: our credentials, not the message,
                                           are wrong (the circuit opens, no DLQ flood)
425, 5xx                                   transient ``portal_unavailable`` (Retry-After honoured)
1xx, 3xx (redirects are never followed),   transient ``portal_misconfigured``: the URL, a proxy or the portal's
404, 405, 406, 410, 415                    set-up is wrong, not the message; every message would get the same
a readable answer whose Bezug names        transient ``portal_misconfigured``
another nachrichtenUUID
Rückweisung 0191 with a code that "gilt    delivered, ``Receipt.duplicate=True`` (S100: already processed)
als zugestellt" in the code list
Rückweisung 0191, other codes              permanent ``portal_rejected``, the first code kept
Quittung 0190 with 2xx                     delivered, with the Quittung's id
Quittung 0190 with 409                     delivered, ``Receipt.duplicate=True``
Quittung 0190 with another status          transient ``portal_misconfigured`` (a contradictory answer)
2xx or 409 without a readable answer       receipt rule ``quittung`` (default): transient ``portal_misconfigured``
(empty, HTML, oversized, not 0190/0191)    (an HTML proxy page is no proof of delivery);
                                           rule ``http_2xx``: delivered (409: as a duplicate), no receipt id
other 4xx without a readable answer        permanent ``portal_client_error`` (400, 413, 422, ...: this request)
=========================================  =======================================================

Transient statuses win over the body: an overloaded gateway's error page says nothing about the message. A
readable body wins over the other statuses: a Rückweisung sent with 200 is still a Rückweisung.
"""

from __future__ import annotations

from datetime import datetime

from adapters.portal.base import Receipt
from rueckkanal.errors import PermanentDeliveryError, Reason, TransientDeliveryError
from rueckkanal.settings import PortalReceipt
from rueckkanal.xoev import PortalAnswer, Quittung, Rueckweisung

_TRANSIENT_4XX = {
    401: Reason.PORTAL_UNAUTHORIZED,
    403: Reason.PORTAL_UNAUTHORIZED,
    408: Reason.PORTAL_TIMEOUT,
    425: Reason.PORTAL_UNAVAILABLE,
    429: Reason.PORTAL_THROTTLED,
}
# Answers about the endpoint or our (constant) request headers, never about one message's content.
_MISCONFIGURED_4XX = frozenset({404, 405, 406, 410, 415})


def classify(
    status: int,
    answer: PortalAnswer | None,
    *,
    nachrichten_uuid: str,
    retry_after: float | None,
    received_at: datetime,
    receipt: PortalReceipt = PortalReceipt.QUITTUNG,
) -> Receipt:
    """A :class:`Receipt`, or raise the delivery error the table above names.

    ``answer`` is the parsed body, or None when there was none or it was not a readable 0190/0191;
    ``nachrichten_uuid`` is the message that was sent, the one a readable answer must refer to.
    """
    transient = transient_reason(status)
    if transient is not None:
        raise TransientDeliveryError(f"portal answered HTTP {status}", reason=transient, retry_after=retry_after)
    if status < 200 or 300 <= status < 400 or status in _MISCONFIGURED_4XX:
        raise _misconfigured(f"portal answered HTTP {status}; check portal.url and what answers there")
    if answer is not None and answer.bezug_uuid != nachrichten_uuid:
        raise _misconfigured(f"portal answer (HTTP {status}) refers to another nachrichtenUUID")
    if isinstance(answer, Rueckweisung):
        if answer.gilt_als_zugestellt:
            return Receipt(None, duplicate=True, status_code=status, received_at=received_at)
        code = answer.gruende[0].code if answer.gruende else None
        raise PermanentDeliveryError(
            f"portal rejected the message (HTTP {status}, Rückweisungsgrund {code or 'none'})",
            reason=Reason.PORTAL_REJECTED,
            portal_code=code,
        )
    if isinstance(answer, Quittung):
        if 200 <= status < 300 or status == 409:
            return Receipt(answer.quittung_id, duplicate=status == 409, status_code=status, received_at=received_at)
        raise _misconfigured(f"portal sent a Quittung with HTTP {status}")
    if 200 <= status < 300 or status == 409:
        if receipt is PortalReceipt.HTTP_2XX:
            return Receipt(None, duplicate=status == 409, status_code=status, received_at=received_at)
        raise _misconfigured(f"portal answered HTTP {status} without a readable Quittung or Rückweisung")
    raise PermanentDeliveryError(f"portal answered HTTP {status}", reason=Reason.PORTAL_CLIENT_ERROR)


def transient_reason(status: int) -> Reason | None:
    """The reason code if ``status`` means "try again later", else None."""
    if status >= 500:
        return Reason.PORTAL_UNAVAILABLE
    return _TRANSIENT_4XX.get(status)


def is_transient(status: int) -> bool:
    return transient_reason(status) is not None


def _misconfigured(message: str) -> TransientDeliveryError:
    return TransientDeliveryError(message, reason=Reason.PORTAL_MISCONFIGURED)
