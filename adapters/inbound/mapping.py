"""The part of a legacy mapping that does not depend on the source format: which canonical field comes from
where, how native status codes translate, how times and amounts are written, and where the event id comes from.

A legacy Fachverfahren reports in its own words ("EING", "24.03.2024 10:15", "96,00"); its YAML file says how
those words map onto the canonical event, so that a new Fachverfahren is a new file, not new code.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rueckkanal.codelists import codelists
from rueckkanal.errors import EventInvalid, Reason
from rueckkanal.model import LEISTUNG_PATTERN, StatusEvent

Target = Literal[
    "vorgangId",
    "leistung",
    "status",
    "statusZeit",
    "aktenzeichen",
    "frist",
    "entscheidung",
    "statusText",
    "zusatzinformation",
    "hinweistext",
    "postfachReferenz",
    "antragsId",
    "berichtigtEventId",
    "zahlung.betrag",
    "zahlung.waehrung",
    "zahlung.verwendungszweck",
    "zahlung.zahlungsUrl",
    "zahlung.faelligkeit",
    "zahlung.empfaenger",
    "zahlung.iban",
    "zahlung.bic",
    "zahlung.kassenzeichen",
]
REQUIRED_TARGETS = ("vorgangId", "status", "statusZeit")
_DATE_TARGETS = frozenset({"frist", "zahlung.faelligkeit"})
_ZAHLUNG = "zahlung."

#: A value read from the source: JSON gives str, int, Decimal, bool, lists, dicts; XPath gives str.
Getter = Callable[[str], object]


class FieldMapping(BaseModel):
    """The format-independent part of a ``mapped_json`` or ``mapped_xml`` configuration."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fields: dict[Target, str] = Field(description="canonical field → path in the source (dotted or XPath)")
    leistung: str | None = Field(None, pattern=LEISTUNG_PATTERN, description="fixed Leistung of every event")
    status_map: dict[str, str] = Field(default_factory=dict, description="native status → Antragsstatus code")
    entscheidung_map: dict[str, str] = Field(default_factory=dict, description="native → Entscheidungsart code")
    event_id: str | None = Field(None, description="path of the event id; unset: a hash of the payload")
    timezone: str = Field("Europe/Berlin", description="zone of times written without an offset")
    datetime_format: str | None = Field(None, description="strptime format; unset: ISO 8601")
    date_format: str | None = Field(None, description="strptime format; unset: ISO 8601")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("status_map")
    @classmethod
    def _statuses_in_code_list(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value.values()) - set(codelists().antragsstatus.rows))
        if unknown:
            raise ValueError(f"not Antragsstatus codes: {', '.join(unknown)}")
        return value

    @field_validator("entscheidung_map")
    @classmethod
    def _entscheidungen_in_code_list(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value.values()) - set(codelists().entscheidungsart.rows))
        if unknown:
            raise ValueError(f"not Entscheidungsart codes: {', '.join(unknown)}")
        return value

    @model_validator(mode="after")
    def _complete(self) -> Self:
        missing = [target for target in REQUIRED_TARGETS if target not in self.fields]
        if missing:
            raise ValueError(f"fields must map {', '.join(missing)}")
        if (self.leistung is None) == ("leistung" not in self.fields):
            raise ValueError("give either a fixed leistung or fields.leistung, exactly one")
        return self

    def to_event(self, get: Getter, payload: bytes, *, source: str) -> StatusEvent:
        """The canonical event from the values ``get`` reads out of one parsed payload."""
        values: dict[str, Any] = {"source": source, "eventId": self._event_id(get, payload)}
        zahlung: dict[str, Any] = {}
        for target, path in self.fields.items():
            raw = get(path)
            if raw is None:
                continue
            value = self._convert(target, raw)
            if target.startswith(_ZAHLUNG):
                zahlung[target.removeprefix(_ZAHLUNG)] = value
            else:
                values[target] = value
        if zahlung:
            values["zahlung"] = zahlung
        if self.leistung is not None:
            values["leistung"] = self.leistung
        return StatusEvent.from_mapping(values)

    def _event_id(self, get: Getter, payload: bytes) -> str:
        """The configured id field, or a hash of the payload: a replayed record keeps its id either way."""
        if self.event_id is None:
            return "sha256-" + hashlib.sha256(payload).hexdigest()[:40]
        raw = get(self.event_id)
        if raw is None:
            raise EventInvalid("eventId: missing at the configured path", reason=Reason.SCHEMA_INVALID)
        return _text(raw)  # type: ignore[return-value]  # a non-text value is refused by the model

    def _convert(self, target: str, raw: object) -> object:
        if target == "status":
            return _translate(raw, self.status_map, "status", Reason.UNKNOWN_STATUS)
        if target == "entscheidung":
            return _translate(raw, self.entscheidung_map, "entscheidung", Reason.SCHEMA_INVALID)
        if target == "statusZeit":
            return self._datetime(raw)
        if target in _DATE_TARGETS:
            return self._date(target, raw)
        if target == "zahlung.betrag":
            return _decimal(raw)
        return _text(raw)

    def _datetime(self, raw: object) -> object:
        if not isinstance(raw, str):
            return raw
        try:
            if self.datetime_format:
                moment = datetime.strptime(raw.strip(), self.datetime_format)  # zone added below
            else:
                moment = datetime.fromisoformat(raw.strip())
        except ValueError:
            raise EventInvalid(
                "statusZeit: not a time in the configured format", reason=Reason.SCHEMA_INVALID
            ) from None
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=ZoneInfo(self.timezone))

    def _date(self, target: str, raw: object) -> object:
        if not isinstance(raw, str):
            return raw
        try:
            if self.date_format:
                return datetime.strptime(raw.strip(), self.date_format).date()  # a day has no zone
            return date.fromisoformat(raw.strip())
        except ValueError:
            raise EventInvalid(f"{target}: not a date in the configured format", reason=Reason.SCHEMA_INVALID) from None


def _translate(raw: object, table: dict[str, str], name: str, reason: Reason) -> object:
    native = _text(raw)
    if not table or not isinstance(native, str):
        return native
    if native not in table:
        raise EventInvalid(f"{name}: native code is not in the configured map", reason=reason)
    return table[native]


def _text(raw: object) -> object:
    """Text as it is; whole numbers as their digits (legacy systems send numeric ids); anything else unchanged,
    for the model to refuse with a precise message."""
    if isinstance(raw, str):
        return raw
    if isinstance(raw, int) and not isinstance(raw, bool):
        return str(raw)
    return raw


def _decimal(raw: object) -> object:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int | Decimal):
        return Decimal(raw)
    if isinstance(raw, str):
        try:
            return Decimal(raw.strip())
        except InvalidOperation:
            raise EventInvalid("zahlung.betrag: not a number", reason=Reason.SCHEMA_INVALID) from None
    return raw
