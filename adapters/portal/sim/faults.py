"""Fault injection for the reference portal: what a flaky real portal does, on purpose and on demand.

The same :class:`FaultSpec` comes from CLI flags at start and from ``POST /admin/faults`` at run time (the JSON
keys are the field names; a POST changes only the keys it names, ``DELETE /admin/faults`` clears everything).
Faults are decided before the message is stored, so a failed request leaves no trace in the portal's store, with
two exceptions that act on the answer of a message that went through: store-then-hang and slow body.

Per request, in this order: latency (uniform between min and max, fixed when equal), dropped connection,
outage (503), throttling (429), random server error (``error_status``), redirect (``redirect_status`` with a
Location), 404, an HTML page with status 200 (a proxy or login page in front of the portal); then, for a request
that passes all of these, store-then-hang (the message is stored, the answer never comes: the connection is held
for ``hang_s`` and closed, so the client times out) or slow body (the answer in ``slow_body_chunk_bytes`` pieces,
``slow_body_delay_ms`` apart). A message whose vorgangsID matches ``reject_vorgang_pattern`` (full match) is
refused with Rückweisung ``reject_code`` after it was parsed.

The OAuth2 token endpoint flaps with ``token_error_rate``: such a token request is answered with a 5xx or with a
200 whose body is no token answer (HTML, truncated JSON, JSON without ``access_token``), chosen at random.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from enum import StrEnum
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rueckkanal.codelists import codelists


class RetryAfterFormat(StrEnum):
    SECONDS = "seconds"
    HTTP_DATE = "http-date"


class FaultSpec(BaseModel):
    """The faults in force. Rates are probabilities per request (0..1)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    error_rate: float = Field(0.0, ge=0, le=1, description="answer error_status")
    error_status: int = Field(503, ge=500, le=599)
    latency_min_ms: int = Field(0, ge=0, le=600_000)
    latency_max_ms: int = Field(0, ge=0, le=600_000)
    throttle_rate: float = Field(0.0, ge=0, le=1, description="answer 429 with Retry-After")
    retry_after_s: int | None = Field(1, ge=0, le=86_400, description="sent with 429 and outage 503; None: omit")
    retry_after_format: RetryAfterFormat = RetryAfterFormat.SECONDS
    outage_seconds: float | None = Field(None, gt=0, description="answer 503 for this long from now")
    outage_until_cleared: bool = Field(False, description="answer 503 until this is set to false")
    drop_rate: float = Field(0.0, ge=0, le=1, description="close the connection without any answer")
    reject_vorgang_pattern: str | None = Field(None, max_length=200, description="regex, full match on vorgangsID")
    reject_code: str = Field("S011", description="Rückweisungsgrund for reject_vorgang_pattern")
    redirect_rate: float = Field(0.0, ge=0, le=1, description="answer redirect_status with a Location")
    redirect_status: int = Field(307, ge=300, le=399)
    not_found_rate: float = Field(0.0, ge=0, le=1, description="answer 404, as a wrong URL would")
    html_rate: float = Field(0.0, ge=0, le=1, description="answer 200 with an HTML page (a proxy in front)")
    store_then_hang_rate: float = Field(0.0, ge=0, le=1, description="store the message, then never answer")
    hang_s: float = Field(60.0, gt=0, le=3600, description="how long a store-then-hang holds the connection")
    slow_body_rate: float = Field(0.0, ge=0, le=1, description="send the answer in small, delayed pieces")
    slow_body_chunk_bytes: int = Field(64, ge=1, le=65_536)
    slow_body_delay_ms: int = Field(20, ge=0, le=60_000, description="pause before each piece of a slow body")
    token_error_rate: float = Field(0.0, ge=0, le=1, description="token requests answered 5xx or with garbage")
    seed: int | None = Field(None, description="seed of the random draws, for reproducible runs")

    @field_validator("reject_vorgang_pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc.msg}") from None
        return value

    @field_validator("reject_code")
    @classmethod
    def _known_code(cls, value: str) -> str:
        if codelists().rueckweisungsgrund_list(value) is None:
            raise ValueError("not a code of the XÖV Rückweisungsgründe or the Rückweisungsgrund code list")
        return value

    @model_validator(mode="after")
    def _latency_range(self) -> Self:
        if self.latency_max_ms < self.latency_min_ms:
            raise ValueError("latency_max_ms must be >= latency_min_ms")
        return self


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do with one request before reading it: wait, then drop it, answer ``status``, or go on.

    ``fault`` names the fault that fired (dropped, outage, throttled, error, redirect, not_found, html,
    store_then_hang, slow_body) for the portal's counters. ``hang`` and ``slow_body`` act on the answer of a
    message that is processed (and stored) as usual.
    """

    delay_s: float
    drop: bool = False
    status: int | None = None
    retry_after: str | None = None
    fault: str | None = None
    location: str | None = None
    html: bool = False
    hang: bool = False
    slow_body: bool = False


class TokenFault(StrEnum):
    """How a flapping token endpoint answers instead of a token."""

    SERVER_ERROR = "server_error"  # 500 or 503
    HTML = "html"  # 200 text/html
    TRUNCATED = "truncated"  # 200 application/json, cut off mid-object
    NO_TOKEN = "no_token"  # noqa: S105  # a fault's name, not a secret; 200 application/json without access_token


_TOKEN_FAULTS = tuple(TokenFault)
REDIRECT_LOCATION = "/moved/rueckkanal/v1/nachrichten"


class Faults:
    """The spec in force plus the outage deadline and the random source; one per portal process."""

    def __init__(
        self,
        spec: FaultSpec | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._clock = clock
        self._wall_clock = wall_clock
        self._spec = FaultSpec()
        self._outage_until: float | None = None
        self._pattern: re.Pattern[str] | None = None
        self._rng = random.Random()  # noqa: S311  # fault dice, not cryptography
        self._apply(spec or FaultSpec())

    @property
    def spec(self) -> FaultSpec:
        return self._spec

    def update(self, changes: Mapping[str, Any]) -> FaultSpec:
        """Change the named keys only; raises pydantic's ValidationError and keeps the old spec on bad input."""
        merged = FaultSpec.model_validate({**self._spec.model_dump(exclude={"outage_seconds"}), **changes})
        self._apply(merged, keep_outage="outage_seconds" not in changes)
        return self._spec

    def clear(self) -> None:
        self._apply(FaultSpec())

    def view(self) -> dict[str, Any]:
        """The spec as JSON, with ``outage_seconds`` as the time left of a running outage window."""
        return self._spec.model_dump(mode="json") | {"outage_seconds": self._outage_left()}

    def decide(self) -> Verdict:
        spec = self._spec
        delay_s = self._rng.uniform(spec.latency_min_ms, spec.latency_max_ms) / 1000
        if self._hit(spec.drop_rate):
            return Verdict(delay_s, drop=True, fault="dropped")
        if spec.outage_until_cleared or self._outage_left() is not None:
            return Verdict(delay_s, status=503, retry_after=self._retry_after(), fault="outage")
        if self._hit(spec.throttle_rate):
            return Verdict(delay_s, status=429, retry_after=self._retry_after(), fault="throttled")
        if self._hit(spec.error_rate):
            return Verdict(delay_s, status=spec.error_status, fault="error")
        if self._hit(spec.redirect_rate):
            return Verdict(delay_s, status=spec.redirect_status, location=REDIRECT_LOCATION, fault="redirect")
        if self._hit(spec.not_found_rate):
            return Verdict(delay_s, status=404, fault="not_found")
        if self._hit(spec.html_rate):
            return Verdict(delay_s, status=200, html=True, fault="html")
        if self._hit(spec.store_then_hang_rate):
            return Verdict(delay_s, hang=True, fault="store_then_hang")
        if self._hit(spec.slow_body_rate):
            return Verdict(delay_s, slow_body=True, fault="slow_body")
        return Verdict(delay_s)

    def token_fault(self) -> TokenFault | None:
        """How the token endpoint misbehaves on this request, if it does."""
        if self._hit(self._spec.token_error_rate):
            return self._rng.choice(_TOKEN_FAULTS)
        return None

    def rejection(self, vorgangs_id: str) -> str | None:
        """The Rückweisungsgrund for this Vorgang, if the reject rule matches it."""
        if self._pattern is not None and self._pattern.fullmatch(vorgangs_id):
            return self._spec.reject_code
        return None

    def _apply(self, spec: FaultSpec, *, keep_outage: bool = False) -> None:
        if not keep_outage:
            seconds = spec.outage_seconds
            self._outage_until = None if seconds is None else self._clock() + seconds
        if spec.seed is not None and spec.seed != self._spec.seed:
            self._rng.seed(spec.seed)
        self._pattern = re.compile(spec.reject_vorgang_pattern) if spec.reject_vorgang_pattern else None
        self._spec = spec

    def _outage_left(self) -> float | None:
        if self._outage_until is None:
            return None
        left = self._outage_until - self._clock()
        return round(left, 3) if left > 0 else None

    def _hit(self, rate: float) -> bool:
        return rate > 0 and self._rng.random() < rate

    def _retry_after(self) -> str | None:
        seconds = self._spec.retry_after_s
        if seconds is None:
            return None
        if self._spec.retry_after_format is RetryAfterFormat.HTTP_DATE:
            return format_datetime(self._wall_clock() + timedelta(seconds=seconds), usegmt=True)
        return str(seconds)
