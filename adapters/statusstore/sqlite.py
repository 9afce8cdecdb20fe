"""The status store in one SQLite file: the embedded default for one status-web process (``make demo``).

One connection, used from one worker thread at a time (``asyncio.to_thread`` under a lock), in WAL mode so
readers of the file do not block the writer. Every write is ``BEGIN IMMEDIATE`` … ``COMMIT``: a batch is stored
whole or not at all. Several processes on one file would serialise on SQLite's lock; several replicas use
PostgreSQL.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ConfigDict

from adapters.statusstore.base import Applied, Link, Migration, in_lock_order, migrations
from adapters.statusstore.figures import SQLITE, dead_letter_figures_sql, delivery_figures_sql, step_figures_sql
from rueckkanal.tracking import StoredStatus, is_final, status_from_json, status_to_json
from rueckkanal.transparency import (
    DeadLetterFigure,
    DeadLetterRecord,
    DeliveryFigure,
    DeliveryRecord,
    StepFigure,
    StepQuery,
    epoch_seconds,
)

T = TypeVar("T")


class SqliteStoreConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    path: Path


def _ts(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _dt(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


class SqliteStatusStore:
    backend = "sqlite"

    def __init__(self, config: SqliteStoreConfig) -> None:
        config.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(config.path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._lock = asyncio.Lock()

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        async with self._lock:
            return await asyncio.to_thread(work, self._db)

    @staticmethod
    def _transaction(db: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
        db.execute("BEGIN IMMEDIATE")
        try:
            result = work(db)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return result

    async def migrate(self) -> list[int]:
        def work(db: sqlite3.Connection) -> list[int]:
            db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                "applied_at TEXT NOT NULL)"
            )
            applied = []
            for migration in migrations(self.backend):
                if self._transaction(db, lambda db, migration=migration: _migrate_one(db, migration)):  # type: ignore[misc]
                    applied.append(migration.version)
            return applied

        return await self._run(work)

    async def apply(self, statuses: Sequence[StoredStatus], received_at: datetime) -> Applied:
        received = _ts(received_at)

        def work(db: sqlite3.Connection) -> Applied:
            stored = 0
            for status in in_lock_order(statuses):
                cursor = db.execute(
                    "INSERT INTO status (nachrichten_uuid, vorgang_key, sequence, status, received_at, data, "
                    "zeitpunkt_s, received_s, leistung, fachverfahren) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (nachrichten_uuid) DO NOTHING",
                    (
                        status.nachrichten_uuid,
                        status.vorgang_key,
                        status.sequence,
                        status.status,
                        received,
                        status_to_json(status),
                        epoch_seconds(status.zeitpunkt),
                        epoch_seconds(received_at),
                        status.leistung,
                        status.fachverfahren,
                    ),
                )
                if cursor.rowcount == 0:
                    continue
                stored += 1
                if not status.aktuell:  # a corrected earlier status: the Vorgang's current status is unchanged
                    continue
                final = received if is_final(status.status) else None
                db.execute(
                    "INSERT INTO vorgang (vorgang_key, last_sequence, final_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (vorgang_key) DO UPDATE SET last_sequence = excluded.last_sequence, "
                    "final_at = excluded.final_at WHERE excluded.last_sequence > vorgang.last_sequence",
                    (status.vorgang_key, status.sequence, final),
                )
            return Applied(stored, len(statuses) - stored)

        return await self._run(lambda db: self._transaction(db, work))

    async def statuses(self, vorgang_key: str) -> list[StoredStatus]:
        rows = await self._run(
            lambda db: db.execute(
                "SELECT data FROM status WHERE vorgang_key = ? ORDER BY sequence, received_at", (vorgang_key,)
            ).fetchall()
        )
        return [status_from_json(row[0]) for row in rows]

    async def add_token(self, vorgang_key: str, digest: str, created_at: datetime) -> None:
        await self._run(
            lambda db: db.execute(
                "INSERT INTO token (digest, vorgang_key, created_at) VALUES (?, ?, ?)",
                (digest, vorgang_key, _ts(created_at)),
            )
        )

    async def link(self, digest: str) -> Link | None:
        row = await self._run(
            lambda db: db.execute(
                "SELECT t.vorgang_key, t.revoked_at, v.final_at FROM token t "
                "LEFT JOIN vorgang v ON v.vorgang_key = t.vorgang_key WHERE t.digest = ?",
                (digest,),
            ).fetchone()
        )
        if row is None:
            return None
        return Link(row[0], row[1] is not None, _dt(row[2]))

    async def revoke(self, digest: str, at: datetime) -> bool:
        def work(db: sqlite3.Connection) -> bool:
            db.execute("UPDATE token SET revoked_at = ? WHERE digest = ? AND revoked_at IS NULL", (_ts(at), digest))
            return db.execute("SELECT 1 FROM token WHERE digest = ?", (digest,)).fetchone() is not None

        return await self._run(work)

    async def revoke_vorgang(self, vorgang_key: str, at: datetime) -> int:
        cursor = await self._run(
            lambda db: db.execute(
                "UPDATE token SET revoked_at = ? WHERE vorgang_key = ? AND revoked_at IS NULL", (_ts(at), vorgang_key)
            )
        )
        return cursor.rowcount

    async def unpublished(self, vorgang_keys: Sequence[str]) -> list[str]:
        keys = sorted(set(vorgang_keys))

        def work(db: sqlite3.Connection) -> list[str]:
            found = []
            for key in keys:
                row = db.execute(
                    "SELECT 1 FROM vorgang WHERE vorgang_key = ? AND link_published_at IS NULL", (key,)
                ).fetchone()
                if row is not None:
                    found.append(key)
            return found

        return await self._run(work)

    async def mark_published(self, vorgang_key: str, at: datetime) -> None:
        await self._run(
            lambda db: db.execute(
                "UPDATE vorgang SET link_published_at = ? WHERE vorgang_key = ?", (_ts(at), vorgang_key)
            )
        )

    async def count_statuses(self) -> int:
        row = await self._run(lambda db: db.execute("SELECT count(*) FROM status").fetchone())
        return int(row[0])

    async def step_figures(self, query: StepQuery) -> list[StepFigure]:
        sql, params = step_figures_sql(SQLITE, query)
        rows = await self._run(lambda db: db.execute(sql, params).fetchall())
        return [StepFigure(r[0], r[1], r[2], r[3], int(r[4]), int(r[5]), int(r[6])) for r in rows]

    async def delivery_figures(self, from_s: int, to_s: int) -> list[DeliveryFigure]:
        sql, params = delivery_figures_sql(SQLITE, from_s, to_s)
        rows = await self._run(lambda db: db.execute(sql, params).fetchall())
        return [DeliveryFigure(r[0], int(r[1]), int(r[2]), tuple(int(v) for v in r[3:])) for r in rows]

    async def dead_letter_figures(self, from_s: int, to_s: int) -> list[DeadLetterFigure]:
        sql, params = dead_letter_figures_sql(SQLITE, from_s, to_s)
        rows = await self._run(lambda db: db.execute(sql, params).fetchall())
        return [DeadLetterFigure(r[0], r[1], r[2], int(r[3])) for r in rows]

    async def record_deliveries(
        self, deliveries: Sequence[DeliveryRecord], dead_letters: Sequence[DeadLetterRecord]
    ) -> None:
        def work(db: sqlite3.Connection) -> None:
            db.executemany(
                "INSERT INTO delivery (nachrichten_uuid, target, delivered_s) VALUES (?, ?, ?) "
                "ON CONFLICT (nachrichten_uuid, target) DO UPDATE SET "
                "delivered_s = min(delivery.delivered_s, excluded.delivered_s)",
                [(d.nachrichten_uuid, d.target, d.delivered_s) for d in deliveries],
            )
            db.executemany(
                "INSERT INTO dead_letter (dlq_partition, dlq_offset, stage, reason, target, failed_s) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (dlq_partition, dlq_offset) DO NOTHING",
                [(d.partition, d.offset, d.stage, d.reason, d.target, d.failed_s) for d in dead_letters],
            )

        await self._run(lambda db: self._transaction(db, work))

    async def close(self) -> None:
        await self._run(lambda db: db.close())


def _migrate_one(db: sqlite3.Connection, migration: Migration) -> bool:
    if db.execute("SELECT 1 FROM schema_migrations WHERE version = ?", (migration.version,)).fetchone() is not None:
        return False
    for statement in _statements(migration.sql):
        db.execute(statement)
    db.execute(
        "INSERT INTO schema_migrations VALUES (?, ?, ?)", (migration.version, migration.name, _ts(datetime.now(UTC)))
    )
    return True


def _statements(sql: str) -> list[str]:
    """The statements of a migration file (no statement of ours contains a semicolon in a literal)."""
    lines = [line.split("--", 1)[0] for line in sql.splitlines()]
    return [part.strip() for part in "\n".join(lines).split(";") if part.strip()]
