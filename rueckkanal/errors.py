"""The one error root of Rückkanal, and the stable reason codes that operators see.

Every failure the pipeline can meet is one of these classes. The route is decided by two attributes, never by
the message text: ``retriable`` (try again later, the input is fine) and ``reason`` (a stable machine code that
goes into the ``rk.error.reason`` DLQ header, metric labels and runbooks)::

    RueckkanalError                      retriable=False; internal_error, state_corrupt (stored state unreadable)
    ├── InputRejected                    the input itself is wrong: dead letter, keep going
    │   ├── DecodeError                  malformed_json, invalid_encoding, payload_too_large,
    │   │                                xml_malformed, xml_forbidden_construct, missing_header,
    │   │                                unsupported_content_type, unsupported_event_type
    │   ├── EventInvalid                 schema_invalid, unknown_status, unknown_source, forbidden_character
    │   └── LifecycleRejected            illegal_transition, stale_event, duplicate_event,
    │                                    correction_unknown, illegal_correction (Statusberichtigung 0102)
    ├── RenderError                      xsd_invalid: our own output broke our schema (a bug, not bad input)
    ├── ConfigError                      config_invalid: refuse to start
    └── DeliveryError
        ├── TransientDeliveryError       retriable=True: portal_unavailable, portal_throttled,
        │                                portal_timeout, portal_connection, portal_misconfigured
        │                                (3xx, 404, 405 or an answer that is no Quittung: the circuit opens)
        └── PermanentDeliveryError       portal_rejected (keeps the portal's code), portal_client_error;
                                         unsent (sent=False): zbp_missing_antrags_id, zbp_status_unmapped,
                                         zbp_service_name_missing (the ZBP payload cannot be built)

Messages must never contain payload text or personal data: they end up in logs and DLQ headers.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar


class Reason(StrEnum):
    """Stable reason codes. Renaming one breaks dashboards, alerts and replay filters: add, never rename."""

    MALFORMED_JSON = "malformed_json"
    INVALID_ENCODING = "invalid_encoding"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    XML_MALFORMED = "xml_malformed"
    XML_FORBIDDEN_CONSTRUCT = "xml_forbidden_construct"
    MISSING_HEADER = "missing_header"
    UNSUPPORTED_CONTENT_TYPE = "unsupported_content_type"
    UNSUPPORTED_EVENT_TYPE = "unsupported_event_type"
    SCHEMA_INVALID = "schema_invalid"
    UNKNOWN_STATUS = "unknown_status"
    UNKNOWN_SOURCE = "unknown_source"
    FORBIDDEN_CHARACTER = "forbidden_character"
    ILLEGAL_TRANSITION = "illegal_transition"
    STALE_EVENT = "stale_event"
    DUPLICATE_EVENT = "duplicate_event"
    XSD_INVALID = "xsd_invalid"
    CONFIG_INVALID = "config_invalid"
    PORTAL_UNAVAILABLE = "portal_unavailable"
    PORTAL_THROTTLED = "portal_throttled"
    PORTAL_TIMEOUT = "portal_timeout"
    PORTAL_CONNECTION = "portal_connection"
    PORTAL_UNAUTHORIZED = "portal_unauthorized"
    PORTAL_MISCONFIGURED = "portal_misconfigured"
    PORTAL_REJECTED = "portal_rejected"
    PORTAL_CLIENT_ERROR = "portal_client_error"
    STATE_CORRUPT = "state_corrupt"
    ZBP_MISSING_ANTRAGS_ID = "zbp_missing_antrags_id"
    ZBP_STATUS_UNMAPPED = "zbp_status_unmapped"
    ZBP_SERVICE_NAME_MISSING = "zbp_service_name_missing"
    INTERNAL_ERROR = "internal_error"
    CORRECTION_UNKNOWN = "correction_unknown"
    ILLEGAL_CORRECTION = "illegal_correction"


class RueckkanalError(Exception):
    """Root of every error this project raises on purpose."""

    retriable: ClassVar[bool] = False
    default_reason: ClassVar[Reason] = Reason.INTERNAL_ERROR

    def __init__(self, message: str, *, reason: Reason | None = None) -> None:
        super().__init__(message)
        self.reason: Reason = reason or self.default_reason

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class InputRejected(RueckkanalError):
    """The input can never succeed as it is: it goes to the DLQ and the partition moves on."""

    default_reason = Reason.SCHEMA_INVALID


class DecodeError(InputRejected):
    default_reason = Reason.MALFORMED_JSON


class EventInvalid(InputRejected):
    default_reason = Reason.SCHEMA_INVALID


class LifecycleRejected(InputRejected):
    default_reason = Reason.ILLEGAL_TRANSITION


class RenderError(RueckkanalError):
    default_reason = Reason.XSD_INVALID


class ConfigError(RueckkanalError):
    default_reason = Reason.CONFIG_INVALID


class DeliveryError(RueckkanalError):
    default_reason = Reason.PORTAL_CLIENT_ERROR


class TransientDeliveryError(DeliveryError):
    """Try again later; ``retry_after`` is the portal's own hint in seconds, if it gave one."""

    retriable = True
    default_reason = Reason.PORTAL_UNAVAILABLE

    def __init__(self, message: str, *, reason: Reason | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, reason=reason)
        self.retry_after = retry_after


class PermanentDeliveryError(DeliveryError):
    """The message can never be delivered; ``portal_code`` is the portal's Rückweisung code (e.g. X001).

    ``sent`` is False when the adapter refused the message before any request (it cannot be expressed on the
    wire): then the portal said nothing, and the circuit breaker must not take it for an answer.
    """

    default_reason = Reason.PORTAL_REJECTED

    def __init__(
        self, message: str, *, reason: Reason | None = None, portal_code: str | None = None, sent: bool = True
    ) -> None:
        super().__init__(message, reason=reason)
        self.portal_code = portal_code
        self.sent = sent
