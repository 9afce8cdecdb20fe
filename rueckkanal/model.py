"""The canonical status event: what every inbound adapter produces and every later stage consumes.

One strict, frozen pydantic model. Its JSON form (camelCase keys as in the design's CloudEvents data, plus
``source`` and ``eventId``) travels between the pipeline stages on ``rueckkanal.events``.

The model is deliberately at least as strict as the XSD of the outbound message: whatever it accepts renders to a
schema-valid message, so a bad event is refused at ingest with a reason code and never turns into a render error
later. Bounds (lengths, year range, time zone offsets, character sets) exist for that reason.

Text follows DIN SPEC 91379 (:mod:`rueckkanal.latinchars`), per field as :data:`TEXT_RULES` says: citizen text
(``statusText``, ``zusatzinformation``, ``hinweistext``) is datatype C, with a short list of typographic characters
replaced; the ``aktenzeichen`` is datatype B and never changed; payment text (``zahlung.verwendungszweck``,
``zahlung.empfaenger``) is reduced to the SEPA character set (ä → ae). Everything is NFC-normalised first. A
character that stays outside is refused (``forbidden_character``) with its code point, never the text: this covers
invisible formatting characters (bidi controls, zero-width characters, BOM, soft hyphen), surrogates, the line and
paragraph separators and every control character. Ids and tokens keep their ASCII patterns and are never
normalised: their bytes are their identity.

Validation errors become :class:`~rueckkanal.errors.InputRejected` subclasses through :func:`input_rejected`;
their messages name fields and rules, never values (values may be personal data), and never a field name the
sender chose: a name that is not one of the model's is shown as ``(extra field)``. :func:`load_json` is the one
JSON reader for inbound payloads: it refuses duplicate keys (which would otherwise silently take the last value).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Annotated, Any, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException

from rueckkanal import latinchars
from rueckkanal.codelists import codelists
from rueckkanal.errors import DecodeError, EventInvalid, InputRejected, Reason
from rueckkanal.latinchars import OutsideCharacterSet, Rule, TextRule

# Character rules shared with the XSD (rueckkanal/data/xoev/xantragsstatus-2.0.0.xsd): keep both in step.
# URIs (RFC 3986) in a shape every URI parser agrees on: "%" only as an escape, one "#" at most, and an https
# authority that is a host name with an optional numeric port. A source is an opaque URI such as a URN (no "//").
_PCHAR = r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})"
_HOST = r"[A-Za-z0-9](?:[A-Za-z0-9.\-]*[A-Za-z0-9])?(?::[0-9]{1,5})?"
URI_PATTERN = rf"^[A-Za-z][A-Za-z0-9+.\-]*:(?:[A-Za-z0-9\-._~!$&'()*+,;=@]|%[0-9A-Fa-f]{{2}})(?:{_PCHAR}|[/?])*$"
HTTPS_URL_PATTERN = rf"^https://{_HOST}(?:/(?:{_PCHAR}|/)*)?(?:\?(?:{_PCHAR}|[/?])*)?(?:#(?:{_PCHAR}|[/?])*)?$"
PRINTABLE_PATTERN = r"^[!-~]+$"  # printable ASCII without blanks: ids and references
VORGANG_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/\-]*$"  # no "|": it separates source and id in the Vorgang key
LEISTUNG_PATTERN = r"^[0-9]{14}$"  # LeiKa/FIM Leistungsschlüssel
# Verwendungszweck: the SEPA character set, and no IBAN. An IBAN is one run of letters and digits of at least
# 15 characters that starts with two letters and two digits; every other run is allowed (digits-only Kassenzeichen,
# long compound words like "Gewerberegisterauszug"). The model also refuses an IBAN written in groups of four
# (see _IBAN_GROUPED); the XSD cannot express that.
_L, _D, _A = "[A-Za-z]", "[0-9]", "[A-Za-z0-9]"
_WORD = f"(?:{_D}{_A}*|{_L}{_D}{_A}*|{_L}{_L}{_L}{_A}*|{_L}{_L}{_D}{_L}{_A}*|{_A}{{1,14}})"
_SEP = r"[ /?:().,'+\-]"
VERWENDUNGSZWECK_PATTERN = rf"^{_SEP}*(?:{_WORD}{_SEP}+)*{_WORD}?$"
_IBAN_GROUPED = re.compile(r"\b[A-Za-z]{2}[0-9]{2}(?: ?[A-Za-z0-9]{4}){2,}")

MIN_YEAR, MAX_YEAR = 2000, 2099
_MAX_OFFSET = timedelta(hours=14)  # the XSD dateTime time zone range

#: The character rule of every text field, by its JSON name (the handbook lists this table).
TEXT_RULES: dict[str, TextRule] = {
    "statusText": TextRule("C", True, Rule.TYPOGRAPHIC),
    "zusatzinformation": TextRule("C", True, Rule.TYPOGRAPHIC),
    "hinweistext": TextRule("C", False, Rule.TYPOGRAPHIC),
    "aktenzeichen": TextRule("B", True, Rule.REFUSE),
    "zahlung.verwendungszweck": TextRule("SEPA", True, Rule.SEPA),
    "zahlung.empfaenger": TextRule("SEPA", True, Rule.SEPA),
}


def text_rule(field: str) -> BeforeValidator:
    """The validator of one text field: :func:`latinchars.apply` with the field's rule; a character outside its
    set raises ``forbidden_character`` naming the code point and its Unicode category, never the text. Anything
    but a string passes unchanged for the field's own type check."""
    rule = TEXT_RULES[field]

    def check(value: object) -> object:
        if not isinstance(value, str):
            return value
        try:
            return latinchars.apply(value, rule)
        except OutsideCharacterSet as exc:
            raise PydanticCustomError(
                "forbidden_character",
                "U+{code} ({category}) not allowed",
                {"code": f"{ord(exc.char):04X}", "category": unicodedata.category(exc.char)},
            ) from None

    return BeforeValidator(check)


StatusText = Annotated[str, text_rule("statusText"), Field(min_length=1, max_length=50)]
Zusatzinformation = Annotated[str, text_rule("zusatzinformation"), Field(min_length=1, max_length=100)]
Hinweistext = Annotated[str, text_rule("hinweistext"), Field(min_length=1, max_length=500)]
Aktenzeichen = Annotated[str, text_rule("aktenzeichen"), Field(min_length=1, max_length=64)]
Verwendungszweck = Annotated[
    str, text_rule("zahlung.verwendungszweck"), Field(min_length=1, max_length=140, pattern=VERWENDUNGSZWECK_PATTERN)
]
Empfaenger = Annotated[str, text_rule("zahlung.empfaenger"), Field(min_length=1, max_length=70)]
Token255 = Annotated[str, Field(min_length=1, max_length=255, pattern=PRINTABLE_PATTERN)]
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"  # the XSD's xas:UUID
# The portal's UUID of the application, in canonical lower case (UUIDs compare case-insensitively, RFC 9562).
AntragsId = Annotated[
    str, BeforeValidator(lambda v: v.lower() if isinstance(v, str) and v.isascii() else v), Field(pattern=UUID_PATTERN)
]


def _check_date(value: date) -> date:
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise PydanticCustomError(
            "date_range", "year must be between {low} and {high}", {"low": MIN_YEAR, "high": MAX_YEAR}
        )
    return value


def _check_datetime(value: datetime) -> datetime:
    _check_date(value)
    offset = value.utcoffset() or timedelta(0)
    if abs(offset) > _MAX_OFFSET or offset % timedelta(minutes=1):
        raise PydanticCustomError("timezone_offset", "time zone offset must be whole minutes within ±14:00", {})
    return value


def _iban(value: object) -> object:
    """An IBAN in its electronic form (no blanks, upper case) whose check digits and national format hold
    (schwifty); the error names the rule, never the value."""
    if not isinstance(value, str):
        return value
    try:
        return IBAN(value).compact
    except SchwiftyException:
        raise PydanticCustomError("iban_invalid", "not a valid IBAN (ISO 13616 check digits and format)", {}) from None


def _bic(value: object) -> object:
    if not isinstance(value, str):
        return value
    try:
        return BIC(value).compact
    except SchwiftyException:
        raise PydanticCustomError("bic_invalid", "not a valid BIC (ISO 9362)", {}) from None


# The payee's account (the authority's, never the citizen's): shapes as in the XSD types IBAN, BIC, Kassenzeichen.
Iban = Annotated[str, BeforeValidator(_iban), Field(pattern=r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$")]
Bic = Annotated[str, BeforeValidator(_bic), Field(pattern=r"^[A-Z]{6}[A-Z2-9][A-NP-Z0-9]([A-Z0-9]{3})?$")]
Kassenzeichen = Annotated[
    str, Field(min_length=1, max_length=35, pattern=r"^[A-Za-z0-9]([A-Za-z0-9 ./\-]*[A-Za-z0-9])?$")
]


class Zahlung(BaseModel):
    """A payment the citizen is asked to make (status 300) or that was received (310).

    ``empfaenger``, ``iban``, ``bic`` and ``kassenzeichen`` name the authority's account, so that the status page
    can offer a transfer (EPC GiroCode): an IBAN needs the payee's name beside it.
    """

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    betrag: Decimal = Field(gt=0, max_digits=11, decimal_places=2, allow_inf_nan=False)
    waehrung: str = Field("EUR", pattern=r"^[A-Z]{3}$", description="ISO 4217")
    verwendungszweck: Verwendungszweck
    zahlungs_url: str | None = Field(None, alias="zahlungsUrl", max_length=2000, pattern=HTTPS_URL_PATTERN)
    faelligkeit: date | None = None
    empfaenger: Empfaenger | None = None
    iban: Iban | None = None
    bic: Bic | None = None
    kassenzeichen: Kassenzeichen | None = None

    @model_validator(mode="after")
    def _payee_named(self) -> Self:
        if self.iban is not None and self.empfaenger is None:
            raise PydanticCustomError("missing_for_iban", "an iban requires empfaenger (the payee's name)", {})
        if self.bic is not None and self.iban is None:
            raise PydanticCustomError("missing_for_bic", "a bic requires iban", {})
        return self

    @field_validator("verwendungszweck")
    @classmethod
    def _no_iban(cls, value: str) -> str:
        if _IBAN_GROUPED.search(value):
            raise PydanticCustomError("iban_forbidden", "must not contain an IBAN (personal data)", {})
        return value

    @field_validator("faelligkeit")
    @classmethod
    def _faelligkeit_range(cls, value: date | None) -> date | None:
        return None if value is None else _check_date(value)


class StatusData(BaseModel):
    """What a Fachverfahren reports about one Vorgang: the CloudEvents ``data`` of an event."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    vorgang_id: str = Field(alias="vorgangId", min_length=1, max_length=64, pattern=VORGANG_ID_PATTERN)
    leistung: str = Field(pattern=LEISTUNG_PATTERN)
    status: str
    status_time: AwareDatetime = Field(alias="statusZeit")
    aktenzeichen: Aktenzeichen | None = None
    frist: date | None = None
    entscheidung: str | None = None
    zahlung: Zahlung | None = None
    status_text: StatusText | None = Field(None, alias="statusText")
    zusatzinformation: Zusatzinformation | None = None
    hinweistext: Hinweistext | None = None
    postfach_ref: Token255 | None = Field(None, alias="postfachReferenz")
    antrags_id: AntragsId | None = Field(None, alias="antragsId")
    #: A Statusberichtigung (0102): the eventId of the earlier event of the same Vorgang (and source) whose status
    #: this event replaces. The Fachverfahren names its own event; the nachrichtenUUID of the earlier message is
    #: derived from it (:func:`rueckkanal.xoev.nachrichten_uuid`), so the Fachverfahren never needs our UUIDs.
    berichtigt: str | None = Field(
        None, alias="berichtigtEventId", min_length=1, max_length=128, pattern=PRINTABLE_PATTERN
    )

    @field_validator("status")
    @classmethod
    def _known_status(cls, value: str) -> str:
        if value not in codelists().antragsstatus:
            raise PydanticCustomError("unknown_status", "not a code of the Antragsstatus code list", {})
        return value

    @field_validator("entscheidung")
    @classmethod
    def _known_entscheidung(cls, value: str | None) -> str | None:
        if value is not None and value not in codelists().entscheidungsart:
            raise PydanticCustomError("unknown_code", "not a code of the Entscheidungsart code list", {})
        return value

    @field_validator("status_time")
    @classmethod
    def _status_time_range(cls, value: datetime) -> datetime:
        return _check_datetime(value)

    @field_validator("frist")
    @classmethod
    def _frist_range(cls, value: date | None) -> date | None:
        return None if value is None else _check_date(value)

    @model_validator(mode="after")
    def _status_requirements(self) -> Self:
        """The statuses that mean nothing without their detail: a Frist, a payment, a decision."""
        required = _REQUIRED_FOR_STATUS.get(self.status)
        if required and getattr(self, required) is None:
            raise PydanticCustomError(
                "missing_for_status", "status {status} requires {field}", {"status": self.status, "field": required}
            )
        return self

    @property
    def effective_status_text(self) -> str:
        """The line the citizen reads: the Fachverfahren's own text, else the code list label."""
        return self.status_text or codelists().antragsstatus.label(self.status)


# 410 carries the end of the Rechtsbehelfsfrist: without it the citizen cannot know until when to object.
_REQUIRED_FOR_STATUS = {"210": "frist", "300": "zahlung", "400": "entscheidung", "410": "frist"}


class StatusEvent(StatusData):
    """A status report of one Vorgang from one Fachverfahren (``source``), identified by ``event_id``."""

    source: str = Field(max_length=255, pattern=URI_PATTERN)
    event_id: str = Field(alias="eventId", min_length=1, max_length=128, pattern=PRINTABLE_PATTERN)

    @property
    def vorgang_key(self) -> str:
        """The pipeline's Kafka key: two Fachverfahren may both have a Vorgang "4711"."""
        return f"{self.source}|{self.vorgang_id}"

    @classmethod
    def from_data(cls, data: StatusData, *, source: str, event_id: str) -> StatusEvent:
        """Combine a validated payload with the envelope's identity; raises :class:`InputRejected`."""
        values: dict[str, Any] = {
            field.alias or name: getattr(data, name) for name, field in StatusData.model_fields.items()
        }
        return cls.from_mapping({**values, "source": source, "eventId": event_id})

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> StatusEvent:
        """Validate Python values (datetime, date, Decimal objects) keyed by the canonical camelCase names."""
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise input_rejected(exc) from None

    @classmethod
    def from_json_bytes(cls, data: bytes) -> StatusEvent:
        """The canonical JSON of :meth:`to_json_bytes` back into an event; raises :class:`InputRejected`."""
        try:
            return cls.model_validate_json(data)
        except ValidationError as exc:
            raise input_rejected(exc) from None

    def to_json_bytes(self) -> bytes:
        return self.model_dump_json(by_alias=True, exclude_none=True).encode()


def parse_status_data(data: bytes) -> StatusData:
    """A JSON payload (CloudEvents ``data``) into :class:`StatusData`; raises :class:`InputRejected`.

    The payload is read twice: :func:`load_json` for the JSON rules (no duplicate keys, no NaN), then pydantic's JSON
    mode, whose strict rules (times as ISO strings, amounts as strings or numbers) the model relies on.
    """
    load_json(data)
    try:
        return StatusData.model_validate_json(data)
    except ValidationError as exc:
        raise input_rejected(exc) from None


class _DuplicateKey(ValueError):
    """Raised inside :func:`load_json`; never leaves it."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        raise _DuplicateKey
    return document


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


def load_json(text: str | bytes, *, parse_float: Callable[[str], Any] = float) -> Any:
    """Parse inbound JSON; duplicate keys, NaN/Infinity, invalid syntax and absurd nesting are ``malformed_json``,
    with a message that names neither the key nor any value."""
    try:
        return json.loads(
            text, object_pairs_hook=_unique_keys, parse_float=parse_float, parse_constant=_reject_constant
        )
    except _DuplicateKey:
        raise DecodeError("not valid JSON: duplicate object key", reason=Reason.MALFORMED_JSON) from None
    except (ValueError, RecursionError):
        raise DecodeError("not valid JSON", reason=Reason.MALFORMED_JSON) from None


_MAX_REPORTED_ERRORS = 5
EXTRA_FIELD = "(extra field)"


@cache
def _field_names() -> frozenset[str]:
    """Every field name and alias of the models: the only names an error message may repeat."""
    names: set[str] = set()
    for model in (StatusEvent, Zahlung):
        for name, field in model.model_fields.items():
            names.update({name, field.alias or name})
    return frozenset(names)


def _location(loc: tuple[int | str, ...]) -> str:
    known = _field_names()
    return ".".join(part if part in known else EXTRA_FIELD for part in map(str, loc)) or "(event)"


def input_rejected(exc: ValidationError) -> InputRejected:
    """The typed rejection for a pydantic error: JSON syntax, forbidden character, unknown status, or any other
    schema violation. Locations name model fields only; any other name (the sender's) is ``(extra field)``."""
    errors = exc.errors(include_url=False, include_input=False)
    types = {error["type"] for error in errors}
    parts = [f"{_location(error['loc'])}: {error['msg']}" for error in errors]
    message = "; ".join(parts[:_MAX_REPORTED_ERRORS])
    if len(parts) > _MAX_REPORTED_ERRORS:
        message += f"; and {len(parts) - _MAX_REPORTED_ERRORS} more"
    if "json_invalid" in types:
        return DecodeError(message, reason=Reason.MALFORMED_JSON)
    if "forbidden_character" in types:
        return EventInvalid(message, reason=Reason.FORBIDDEN_CHARACTER)
    if "unknown_status" in types:
        return EventInvalid(message, reason=Reason.UNKNOWN_STATUS)
    return EventInvalid(message, reason=Reason.SCHEMA_INVALID)
