"""Generated Vorgänge for the report's tests and benchmark: the configured Fachverfahren and Leistungen, a year of
timelines (received → complete → decided → Bescheid, some with a Nachforderung, a correction or a Widerspruch), the
receipts of two delivery targets and some dead letters. Deterministic for a seed."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from rueckkanal.tracking import StoredStatus
from rueckkanal.transparency import DeadLetterRecord, DeliveryRecord

LEISTUNGEN = (
    ("hundesteuer", "urn:de:leipzig:fachverfahren:hundesteuer", "99108001000000", 3.0),
    ("bewohnerparken", "urn:de:leipzig:fachverfahren:bewohnerparken", "99102011000000", 6.0),
    ("gewerberegister", "urn:de:leipzig:fachverfahren:gewerberegister", "99050012000000", 10.0),
)
YEAR_START = datetime(2025, 1, 1, tzinfo=UTC)


def vorgaenge(count: int, seed: int = 21) -> Iterator[list[StoredStatus]]:
    """``count`` Vorgänge, each as its statuses; received during 2025, each step a few days (log-normal)."""
    rng = random.Random(seed)
    for i in range(count):
        fv, source, leistung, typical = LEISTUNGEN[i % len(LEISTUNGEN)]
        at = YEAR_START + timedelta(seconds=rng.randrange(330 * 86_400))
        steps = [("100", at)]
        if rng.random() < 0.2:
            at += timedelta(days=rng.lognormvariate(math.log(typical / 2), 0.5))
            steps.append(("210", at))
        if rng.random() < 0.9:
            at += timedelta(days=rng.lognormvariate(math.log(typical), 0.6))
            steps.append(("220", at))
            if rng.random() < 0.05:  # a corrected "complete" a little later
                steps.append(("220", at + timedelta(hours=rng.randrange(1, 48))))
            if rng.random() < 0.85:
                at += timedelta(days=rng.lognormvariate(math.log(typical * 1.5), 0.7))
                steps.append(("400", at))
                at += timedelta(hours=rng.randrange(1, 72))
                steps.append(("410", at))
                if rng.random() < 0.03:
                    steps.append(("430", at + timedelta(days=10)))
        key = f"{source}|GEN-{i:07d}"
        yield [
            StoredStatus(
                vorgang_key=key,
                nachrichten_uuid=f"{seed:08x}-0000-4000-8000-{i * 16 + n:012x}",
                sequence=n,
                status=code,
                status_text="generiert",
                zeitpunkt=when,
                leistung=leistung,
                fachverfahren=fv,
            )
            for n, (code, when) in enumerate(steps, start=1)
        ]


def receipts(statuses: list[StoredStatus], seed: int = 21) -> list[DeliveryRecord]:
    """A receipt per status at the state portal (target ``default``, mostly seconds, some after an outage) and at
    the BundID target for Vorgänge with a mailbox (every other one)."""
    rng = random.Random(seed + 1)
    out = []
    for status in statuses:
        t = math.floor(status.zeitpunkt.timestamp())
        delay = rng.choice((1, 2, 3, 5, 8, 20, 45, 90, 400, 5000))
        out.append(DeliveryRecord(status.nachrichten_uuid, "default", t + delay))
        if int(status.vorgang_key[-1]) % 2 == 0 and rng.random() < 0.97:
            out.append(DeliveryRecord(status.nachrichten_uuid, "bundid", t + rng.choice((2, 4, 30, 70, 4000))))
    return out


def dead_letters(count: int, seed: int = 21) -> list[DeadLetterRecord]:
    rng = random.Random(seed + 2)
    reasons = (
        ("delivery", "portal_rejected", "default"),
        ("delivery", "zbp_missing_antrags_id", "bundid"),
        ("ingest", "schema_invalid", ""),
        ("ingest", "illegal_transition", ""),
    )
    return [
        DeadLetterRecord(0, k, *rng.choice(reasons), math.floor(YEAR_START.timestamp()) + rng.randrange(360 * 86_400))
        for k in range(count)
    ]
