"""Source records for pipeline tests: legal Hundesteuer lifecycles as CloudEvents, and the bad-input corpus."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import yaml

from rueckkanal.xoev import nachrichten_uuid
from tests.support.kafka_io import Record

ROOT = Path(__file__).resolve().parents[2]
BAD_DIR = ROOT / "tests" / "fixtures" / "bad"
SOURCE = "urn:de:leipzig:fachverfahren:hundesteuer"
TYPE = "de.rueckkanal.antragsstatus.v1"
CET = timezone(timedelta(hours=1))

#: A legal 20-step lifecycle that loops back twice, is decided, bekanntgegeben, objected to, remedied (Abhilfe),
#: bekanntgegeben again and objected to again: it ends open (430), so later steps (200) stay legal.
LIFECYCLE = (
    *("100", "120", "200", "210", "220", "200", "210", "220", "230", "200"),
    *("220", "300", "310", "200", "400", "410", "430", "440", "410", "430"),
)
_EXTRA = {
    "210": {"frist": "2024-12-31"},
    "410": {"frist": "2025-01-31"},
    "300": {
        "zahlung": {
            "betrag": "96.00",
            "waehrung": "EUR",
            "verwendungszweck": "Hundesteuer 2024 Kassenzeichen 5212024000123",
            "zahlungsUrl": "https://epayment.leipzig.de/hundesteuer?kz=5212024000123",
            "faelligkeit": "2024-12-15",
        }
    },
    "400": {"entscheidung": "01"},
}


@dataclass(frozen=True)
class ValidEvent:
    vorgang_id: str
    event_id: str
    status: str
    step: int  # 1-based position in its Vorgang's lifecycle: the expected sequence number
    record: Record

    @property
    def vorgang_key(self) -> str:
        return f"{SOURCE}|{self.vorgang_id}"

    @property
    def nachrichten_uuid(self) -> str:
        return nachrichten_uuid(SOURCE, self.event_id)


def hundesteuer_events(run: str, vorgaenge: int, steps: int = len(LIFECYCLE)) -> list[ValidEvent]:
    """``vorgaenge`` Vorgänge with ``steps`` events each, interleaved round-robin as a busy office would send them."""
    start = datetime(2024, 3, 4, 8, 0, tzinfo=CET)
    events = []
    for step in range(steps):
        status = LIFECYCLE[step % len(LIFECYCLE)] if step < len(LIFECYCLE) else "200"
        for v in range(vorgaenge):
            vorgang_id = f"HST-{run}-{v:05d}"
            event_id = f"{vorgang_id}-e{step + 1:03d}"
            when = (start + timedelta(minutes=step)).isoformat()
            data = {
                "vorgangId": vorgang_id,
                "leistung": "99108001000000",
                "status": status,
                "statusZeit": when,
                "postfachReferenz": f"bundid:postfach:{v:08x}",
                **_EXTRA.get(status, {}),
            }
            headers = [
                ("ce_specversion", b"1.0"),
                ("ce_id", event_id.encode()),
                ("ce_source", SOURCE.encode()),
                ("ce_type", TYPE.encode()),
                ("ce_time", when.encode()),
                ("content-type", b"application/json"),
            ]
            record: Record = (vorgang_id.encode(), json.dumps(data).encode(), headers)
            events.append(ValidEvent(vorgang_id, event_id, status, step + 1, record))
    return events


@dataclass(frozen=True)
class BadCase:
    id: str
    fachverfahren: str
    reason: str
    record: Record


def bad_corpus() -> list[BadCase]:
    manifest = yaml.safe_load((BAD_DIR / "cases.yaml").read_text(encoding="utf-8"))
    cases = []
    for case in manifest["cases"]:
        key = case.get("key")
        headers = [(name, str(value).encode()) for name, value in (case.get("headers") or {}).items()]
        value = (BAD_DIR / case["file"]).read_bytes()
        record: Record = (key.encode() if key else None, value, headers)
        cases.append(BadCase(case["id"], case["fachverfahren"], case["reason"], record))
    return cases


def status_event(vorgang_id: str, step: int, status: str, when: datetime, suffix: str = "") -> ValidEvent:
    """One hundesteuer event of ``vorgang_id`` with the given status and status time (event id ``<id>-e<step>``
    plus ``suffix``), with the fields its status needs."""
    event_id = f"{vorgang_id}-e{step:03d}{suffix}"
    data = {
        "vorgangId": vorgang_id,
        "leistung": "99108001000000",
        "status": status,
        "statusZeit": when.isoformat(),
        "postfachReferenz": "bundid:postfach:00000001",
        **_EXTRA.get(status, {}),
    }
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", event_id.encode()),
        ("ce_source", SOURCE.encode()),
        ("ce_type", TYPE.encode()),
        ("ce_time", when.isoformat().encode()),
        ("content-type", b"application/json"),
    ]
    return ValidEvent(vorgang_id, event_id, status, step, (vorgang_id.encode(), json.dumps(data).encode(), headers))
