"""The status store in PostgreSQL (asyncpg): for several status-web replicas on one database.

Every replica writes the statuses of the partitions it was assigned; after a rebalance or a crash the next owner
gets some messages again. Idempotence is the primary key on nachrichtenUUID (``ON CONFLICT DO NOTHING``): a
second insert of the same message waits for the first transaction and then does nothing. The Vorgang row is
updated by an ``INSERT … ON CONFLICT DO UPDATE … WHERE`` that only moves forward (higher sequence), under its row
lock. Rows are written in :func:`~adapters.statusstore.base.in_lock_order`, so two transactions never wait on each
other in a cycle. Migrations take a transaction-level advisory lock: replicas starting together apply each file
once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from adapters.statusstore.base import Applied, Link, in_lock_order, migrations
from adapters.statusstore.figures import POSTGRES, dead_letter_figures_sql, delivery_figures_sql, step_figures_sql
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

#: The advisory lock key of the migrations (any constant that no other code of this database uses).
_MIGRATION_LOCK = 0x726B_7374_6174  # "rkstat"


class PostgresStoreConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    dsn: SecretStr = Field(description="postgresql://user:password@host:port/database")
    min_connections: int = Field(1, ge=0)
    max_connections: int = Field(10, ge=1)


class PostgresStatusStore:
    backend = "postgres"

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @classmethod
    async def connect(cls, config: PostgresStoreConfig) -> PostgresStatusStore:
        pool = await asyncpg.create_pool(
            config.dsn.get_secret_value(), min_size=config.min_connections, max_size=config.max_connections
        )
        return cls(pool)

    async def migrate(self) -> list[int]:
        applied = []
        async with self._pool.acquire() as conn:
            # CREATE TABLE IF NOT EXISTS is not safe against a replica doing the same at the same moment (both pass
            # the check, one fails on the catalogue's unique index): the same lock as the migrations serialises it.
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                    "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
                )
            for migration in migrations(self.backend):
                async with conn.transaction():
                    await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
                    done = await conn.fetchval("SELECT 1 FROM schema_migrations WHERE version = $1", migration.version)
                    if done:
                        continue
                    await conn.execute(migration.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                        migration.version,
                        migration.name,
                    )
                    applied.append(migration.version)
        return applied

    async def apply(self, statuses: Sequence[StoredStatus], received_at: datetime) -> Applied:
        stored = 0
        async with self._pool.acquire() as conn, conn.transaction():
            for status in in_lock_order(statuses):
                inserted = await conn.fetchval(
                    "INSERT INTO status (nachrichten_uuid, vorgang_key, sequence, status, received_at, data, "
                    "zeitpunkt_s, received_s, leistung, fachverfahren) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
                    "ON CONFLICT (nachrichten_uuid) DO NOTHING RETURNING 1",
                    status.nachrichten_uuid,
                    status.vorgang_key,
                    status.sequence,
                    status.status,
                    received_at,
                    status_to_json(status),
                    epoch_seconds(status.zeitpunkt),
                    epoch_seconds(received_at),
                    status.leistung,
                    status.fachverfahren,
                )
                if inserted is None:
                    continue
                stored += 1
                if not status.aktuell:  # a corrected earlier status: the Vorgang's current status is unchanged
                    continue
                await conn.execute(
                    "INSERT INTO vorgang (vorgang_key, last_sequence, final_at) VALUES ($1, $2, $3) "
                    "ON CONFLICT (vorgang_key) DO UPDATE SET last_sequence = excluded.last_sequence, "
                    "final_at = excluded.final_at WHERE excluded.last_sequence > vorgang.last_sequence",
                    status.vorgang_key,
                    status.sequence,
                    received_at if is_final(status.status) else None,
                )
        return Applied(stored, len(statuses) - stored)

    async def statuses(self, vorgang_key: str) -> list[StoredStatus]:
        rows = await self._pool.fetch(
            "SELECT data FROM status WHERE vorgang_key = $1 ORDER BY sequence, received_at", vorgang_key
        )
        return [status_from_json(row["data"]) for row in rows]

    async def add_token(self, vorgang_key: str, digest: str, created_at: datetime) -> None:
        await self._pool.execute(
            "INSERT INTO token (digest, vorgang_key, created_at) VALUES ($1, $2, $3)", digest, vorgang_key, created_at
        )

    async def link(self, digest: str) -> Link | None:
        row = await self._pool.fetchrow(
            "SELECT t.vorgang_key, t.revoked_at, v.final_at FROM token t "
            "LEFT JOIN vorgang v ON v.vorgang_key = t.vorgang_key WHERE t.digest = $1",
            digest,
        )
        if row is None:
            return None
        return Link(row["vorgang_key"], row["revoked_at"] is not None, row["final_at"])

    async def revoke(self, digest: str, at: datetime) -> bool:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("UPDATE token SET revoked_at = $1 WHERE digest = $2 AND revoked_at IS NULL", at, digest)
            return bool(await conn.fetchval("SELECT 1 FROM token WHERE digest = $1", digest))

    async def revoke_vorgang(self, vorgang_key: str, at: datetime) -> int:
        result = await self._pool.execute(
            "UPDATE token SET revoked_at = $1 WHERE vorgang_key = $2 AND revoked_at IS NULL", at, vorgang_key
        )
        return int(result.split()[-1])

    async def unpublished(self, vorgang_keys: Sequence[str]) -> list[str]:
        rows = await self._pool.fetch(
            "SELECT vorgang_key FROM vorgang WHERE vorgang_key = ANY($1::text[]) AND link_published_at IS NULL "
            "ORDER BY vorgang_key",
            sorted(set(vorgang_keys)),
        )
        return [row["vorgang_key"] for row in rows]

    async def mark_published(self, vorgang_key: str, at: datetime) -> None:
        await self._pool.execute("UPDATE vorgang SET link_published_at = $1 WHERE vorgang_key = $2", at, vorgang_key)

    async def count_statuses(self) -> int:
        return int(await self._pool.fetchval("SELECT count(*) FROM status"))

    async def step_figures(self, query: StepQuery) -> list[StepFigure]:
        sql, params = step_figures_sql(POSTGRES, query)
        rows = await self._pool.fetch(sql, *params)
        return [StepFigure(r[0], r[1], r[2], r[3], int(r[4]), int(r[5]), int(r[6])) for r in rows]

    async def delivery_figures(self, from_s: int, to_s: int) -> list[DeliveryFigure]:
        sql, params = delivery_figures_sql(POSTGRES, from_s, to_s)
        rows = await self._pool.fetch(sql, *params)
        return [DeliveryFigure(r[0], int(r[1]), int(r[2]), tuple(int(v) for v in list(r)[3:])) for r in rows]

    async def dead_letter_figures(self, from_s: int, to_s: int) -> list[DeadLetterFigure]:
        sql, params = dead_letter_figures_sql(POSTGRES, from_s, to_s)
        rows = await self._pool.fetch(sql, *params)
        return [DeadLetterFigure(r[0], r[1], r[2], int(r[3])) for r in rows]

    async def record_deliveries(
        self, deliveries: Sequence[DeliveryRecord], dead_letters: Sequence[DeadLetterRecord]
    ) -> None:
        earliest: dict[tuple[str, str], int] = {}
        for d in deliveries:  # one row per key, in key order: rows of one batch never wait on each other
            key = (d.nachrichten_uuid, d.target)
            earliest[key] = min(earliest.get(key, d.delivered_s), d.delivered_s)
        letters = {(d.partition, d.offset): d for d in dead_letters}
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.executemany(
                "INSERT INTO delivery (nachrichten_uuid, target, delivered_s) VALUES ($1, $2, $3) "
                "ON CONFLICT (nachrichten_uuid, target) DO UPDATE SET "
                "delivered_s = LEAST(delivery.delivered_s, excluded.delivered_s)",
                [(uuid, target, at) for (uuid, target), at in sorted(earliest.items())],
            )
            await conn.executemany(
                "INSERT INTO dead_letter (dlq_partition, dlq_offset, stage, reason, target, failed_s) "
                "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (dlq_partition, dlq_offset) DO NOTHING",
                [(d.partition, d.offset, d.stage, d.reason, d.target, d.failed_s) for _, d in sorted(letters.items())],
            )

    async def close(self) -> None:
        await self._pool.close()
