"""The status store: where status-web keeps each Vorgang's statuses and the digests of its tracking tokens.

One protocol (:class:`StatusStore`), two databases: SQLite (``adapters/statusstore/sqlite.py``, one process, the
embedded default) and PostgreSQL (``adapters/statusstore/postgres.py``, several replicas). The contract tests in
``tests/contract/statusstore_contract.py`` hold both to the same rules:

* :meth:`StatusStore.apply` stores a batch of statuses in **one transaction**: all or nothing, so the consumer may
  commit its Kafka offsets once it returns, and only then. A status whose nachrichtenUUID is already stored is
  skipped by the database's primary key, not by a check before the insert: two replicas applying the same message
  at once still store it once.
* Per Vorgang the store keeps the highest sequence number and when the Vorgang became final (its highest-numbered
  status is terminal); a status that arrives late with a lower number changes neither. Vorgänge of a batch are
  locked in key order, so two replicas never deadlock on each other.
* Each status also keeps its ``zeitpunkt`` and arrival as whole epoch seconds, its Leistung and Fachverfahren as
  columns, for the transparency figures; receipts of the delivery targets and dead-letter headers are kept beside
  (:meth:`StatusStore.record_deliveries`), never a payload.
* Tokens are stored only as digests (:func:`rueckkanal.tracking.token_digest`); :meth:`StatusStore.link` answers
  what a digest points at, and the caller decides with :func:`rueckkanal.tracking.links_expired`.

Migrations are numbered SQL files per backend in ``migrations/<backend>/NNNN_name.sql``, applied in order at start,
each in its own transaction together with its row in ``schema_migrations``; replicas starting at once serialise on
a lock, so each file runs exactly once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib.resources import files
from typing import Protocol

from rueckkanal.errors import ConfigError
from rueckkanal.tracking import StoredStatus
from rueckkanal.transparency import (
    DeadLetterFigure,
    DeadLetterRecord,
    DeliveryFigure,
    DeliveryRecord,
    StepFigure,
    StepQuery,
)

MIGRATIONS_DIR = files("adapters.statusstore") / "migrations"  # package data
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations(backend: str) -> list[Migration]:
    """The migrations of ``backend`` in version order; a gap or a badly named file is a configuration error."""
    found = []
    sql_files = [path for path in (MIGRATIONS_DIR / backend).iterdir() if path.name.endswith(".sql")]
    for path in sorted(sql_files, key=lambda path: path.name):
        match = _MIGRATION_NAME.match(path.name)
        if match is None:
            raise ConfigError(f"statusstore: migration file name {path.name!r} is not NNNN_name.sql")
        found.append(Migration(int(match.group(1)), path.name.removesuffix(".sql"), path.read_text(encoding="utf-8")))
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise ConfigError(f"statusstore: {backend} migrations are not numbered 1, 2, 3, … without gaps")
    return found


def in_lock_order(statuses: Sequence[StoredStatus]) -> list[StoredStatus]:
    """A batch in the order every backend writes it: by Vorgang key, then sequence, then nachrichtenUUID. Two
    transactions that lock rows in the same order cannot deadlock on each other."""
    return sorted(statuses, key=lambda s: (s.vorgang_key, s.sequence, s.nachrichten_uuid))


@dataclass(frozen=True)
class Applied:
    """What one :meth:`StatusStore.apply` did: statuses stored new, and statuses that were already there."""

    stored: int
    duplicates: int


@dataclass(frozen=True)
class Link:
    """What a token digest points at."""

    vorgang_key: str
    revoked: bool
    final_at: datetime | None


class StatusStore(Protocol):
    """Statuses and token digests of the citizen status page (see the module docstring for the rules)."""

    backend: str

    async def migrate(self) -> list[int]:
        """Apply the missing migrations; returns the versions applied now (empty when up to date)."""
        ...

    async def apply(self, statuses: Sequence[StoredStatus], received_at: datetime) -> Applied:
        """Store a batch in one transaction; ``received_at`` (aware) is when it arrived here."""
        ...

    async def statuses(self, vorgang_key: str) -> list[StoredStatus]:
        """The Vorgang's statuses in sequence order."""
        ...

    async def add_token(self, vorgang_key: str, digest: str, created_at: datetime) -> None: ...

    async def link(self, digest: str) -> Link | None:
        """What the digest points at, or None for an unknown one."""
        ...

    async def revoke(self, digest: str, at: datetime) -> bool:
        """Revoke one token; False if it is unknown (revoking twice keeps the first time)."""
        ...

    async def revoke_vorgang(self, vorgang_key: str, at: datetime) -> int:
        """Revoke every token of a Vorgang; returns how many were still valid."""
        ...

    async def unpublished(self, vorgang_keys: Sequence[str]) -> list[str]:
        """Those of ``vorgang_keys`` that have statuses but no link on the tracking topic yet, in key order."""
        ...

    async def mark_published(self, vorgang_key: str, at: datetime) -> None: ...

    async def count_statuses(self) -> int: ...

    # -- transparency figures (adapters/statusstore/figures.py, rules in rueckkanal/transparency.py) -----------

    async def step_figures(self, query: StepQuery) -> list[StepFigure]:
        """Count, median and 80th percentile of the steps ``query`` selects, computed in SQL."""
        ...

    async def delivery_figures(self, from_s: int, to_s: int) -> list[DeliveryFigure]:
        """Per delivery target, how many statuses of ``[from_s, to_s)`` reached it, and how fast."""
        ...

    async def dead_letter_figures(self, from_s: int, to_s: int) -> list[DeadLetterFigure]:
        """Dead letters that failed in ``[from_s, to_s)``, by target, stage and reason."""
        ...

    async def record_deliveries(
        self, deliveries: Sequence[DeliveryRecord], dead_letters: Sequence[DeadLetterRecord]
    ) -> None:
        """Store receipts (the earliest per status and target is kept) and dead letters (once per DLQ offset)
        in one transaction."""
        ...

    async def close(self) -> None: ...
