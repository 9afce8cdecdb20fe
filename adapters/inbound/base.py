"""What an inbound adapter is: one method from a Kafka record of a Fachverfahren to a :class:`StatusEvent`.

Like httpx's one-method transport, the protocol is tiny so that formats stay independent and testable without Kafka.
The contract every adapter keeps (and ``tests/contract/inbound_contract.py`` checks): :meth:`InboundAdapter.decode`
returns a :class:`~rueckkanal.model.StatusEvent` or raises an :class:`~rueckkanal.errors.InputRejected` subclass
with a precise reason, and nothing else, whatever bytes arrive. :class:`GuardedAdapter` enforces the "nothing
else" part, so that a bug in one format becomes a dead letter (``internal_error``) instead of a crashed agent.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

from adapters.headers import ascii_lower
from rueckkanal.errors import DecodeError, EventInvalid, InputRejected, Reason
from rueckkanal.model import StatusEvent, load_json

DEFAULT_MAX_PAYLOAD_BYTES = 256 * 1024


@dataclass(frozen=True)
class InboundRecord:
    """A Kafka record as read from a Fachverfahren's topic, independent of the Kafka client."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()

    def header(self, name: str) -> bytes | None:
        """The last header of that name, ASCII case-insensitive (:mod:`adapters.headers`)."""
        return self._by_name.get(ascii_lower(name))

    @cached_property
    def _by_name(self) -> dict[str, bytes]:
        """The headers by lowered name, the last of a repeated name winning: read once, however many are asked."""
        return {ascii_lower(name): value if value is not None else b"" for name, value in self.headers}


class InboundAdapter(Protocol):
    def decode(self, record: InboundRecord) -> StatusEvent:
        """The event in ``record``, or an :class:`InputRejected` with a reason; never any other exception."""
        ...


class GuardedAdapter(ABC):
    """Base of the shipped adapters: size cap first, and no exception but :class:`InputRejected` gets out."""

    def __init__(self, *, source: str, max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES) -> None:
        self.source = source
        self.max_payload_bytes = max_payload_bytes

    def decode(self, record: InboundRecord) -> StatusEvent:
        try:
            return self._decode(record)
        except InputRejected:
            raise
        except Exception as exc:  # the contract: whatever happens, a typed rejection (see module docstring)
            raise InputRejected(
                f"adapter failed unexpectedly ({type(exc).__name__})", reason=Reason.INTERNAL_ERROR
            ) from exc

    @abstractmethod
    def _decode(self, record: InboundRecord) -> StatusEvent: ...

    def payload(self, record: InboundRecord) -> bytes:
        """The record value, within the size cap; a missing value (tombstone) is an empty payload."""
        value = record.value or b""
        if len(value) > self.max_payload_bytes:
            raise DecodeError(
                f"payload of {len(value)} bytes exceeds {self.max_payload_bytes}", reason=Reason.PAYLOAD_TOO_LARGE
            )
        return value


def utf8(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError(f"{what} is not valid UTF-8", reason=Reason.INVALID_ENCODING) from None


def json_object(text: str, *, parse_float: Callable[[str], Any] = float) -> dict[str, Any]:
    """Parse JSON text that must be an object, by the model's JSON rules (:func:`~rueckkanal.model.load_json`:
    duplicate keys, NaN/Infinity and absurd nesting are malformed JSON)."""
    parsed = load_json(text, parse_float=parse_float)
    if not isinstance(parsed, dict):
        raise EventInvalid("JSON payload must be an object", reason=Reason.SCHEMA_INVALID)
    return parsed
