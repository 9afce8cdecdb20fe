"""The reference portal's memory: every nachrichtenUUID it took, and the current status of every Vorgang.

SQLite in WAL mode, so a restarted portal still recognises a nachrichtenUUID it quittiert before (the duplicate
case the delivery stage must survive). One thread owns the connection and runs every statement, so the event loop
never blocks on disk and no two statements interleave; each write is one short transaction.

A Vorgang is identified by its Fachverfahren (URI) and its vorgangsID, as in the message's Vorgangsreferenz: two
Fachverfahren may both have a Vorgang "4711". The current status only moves forward by sequenznummer: a late
message with a lower number is stored (and counted) but does not overwrite a newer status.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

_T = TypeVar("_T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS nachricht (
    arrival            INTEGER PRIMARY KEY AUTOINCREMENT,
    nachrichten_uuid   TEXT NOT NULL UNIQUE,
    fachverfahren      TEXT NOT NULL,
    vorgangs_id        TEXT NOT NULL,
    sequence           INTEGER NOT NULL,
    status             TEXT NOT NULL,
    status_text        TEXT NOT NULL,
    status_time        TEXT NOT NULL,
    receipt_id         TEXT NOT NULL,
    first_received_at  TEXT NOT NULL,
    last_received_at   TEXT NOT NULL,
    received_count     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS nachricht_by_vorgang ON nachricht (vorgangs_id, fachverfahren, arrival);
CREATE TABLE IF NOT EXISTS vorgang (
    fachverfahren      TEXT NOT NULL,
    vorgangs_id        TEXT NOT NULL,
    nachrichten_uuid   TEXT NOT NULL,
    sequence           INTEGER NOT NULL,
    status             TEXT NOT NULL,
    status_text        TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    PRIMARY KEY (fachverfahren, vorgangs_id)
);
"""

_NACHRICHT_COLUMNS = (
    "nachrichten_uuid, fachverfahren, vorgangs_id, sequence, status, status_text, status_time, receipt_id, "
    "first_received_at, last_received_at, received_count"
)


@dataclass(frozen=True, slots=True)
class Incoming:
    """What the portal reads from a valid Statusmeldung 0100."""

    nachrichten_uuid: str
    fachverfahren: str
    vorgangs_id: str
    sequence: int
    status: str
    status_text: str
    status_time: str


@dataclass(frozen=True, slots=True)
class Stored:
    receipt_id: str
    duplicate: bool
    received_count: int
    first_received_at: str


@dataclass(frozen=True, slots=True)
class NachrichtRow:
    nachrichten_uuid: str
    fachverfahren: str
    vorgangs_id: str
    sequence: int
    status: str
    status_text: str
    status_time: str
    receipt_id: str
    first_received_at: str
    last_received_at: str
    received_count: int


@dataclass(frozen=True, slots=True)
class VorgangRow:
    fachverfahren: str
    vorgangs_id: str
    nachrichten_uuid: str
    sequence: int
    status: str
    status_text: str
    updated_at: str


class SimStore:
    """The SQLite file behind the portal; ``":memory:"`` for a portal that forgets on restart."""

    def __init__(self, path: Path | str = ":memory:") -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="portal-sim-sqlite")
        self._connection = self._executor.submit(_connect, str(path)).result()

    async def record(self, incoming: Incoming) -> Stored:
        """Store a message once; a repeated nachrichtenUUID only raises its count and gets the first receipt id."""
        return await self._run(lambda: _record(self._connection, incoming, _now()))

    async def nachricht(self, nachrichten_uuid: str) -> NachrichtRow | None:
        rows = await self._run(
            lambda: _select_nachrichten(self._connection, "nachrichten_uuid = ?", (nachrichten_uuid,))
        )
        return rows[0] if rows else None

    async def nachrichten(self, vorgangs_id: str, fachverfahren: str | None = None) -> list[NachrichtRow]:
        """The messages of a Vorgang in arrival order (first arrival of each nachrichtenUUID)."""
        where = "vorgangs_id = ?"
        params: tuple[str, ...] = (vorgangs_id,)
        if fachverfahren is not None:
            where, params = f"{where} AND fachverfahren = ?", (*params, fachverfahren)
        return await self._run(lambda: _select_nachrichten(self._connection, where, params))

    async def vorgaenge(self, vorgangs_id: str) -> list[VorgangRow]:
        """The current status of every Vorgang with this id (one per Fachverfahren)."""
        return await self._run(lambda: _select_vorgaenge(self._connection, vorgangs_id))

    async def close(self) -> None:
        await self._run(self._connection.close)
        self._executor.shutdown(wait=True)

    async def _run(self, call: Callable[[], _T]) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _connect(path: str) -> sqlite3.Connection:
    connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across process crashes
    connection.executescript(_SCHEMA)
    return connection


def _record(connection: sqlite3.Connection, incoming: Incoming, now: str) -> Stored:
    connection.execute("BEGIN IMMEDIATE")
    try:
        stored = _record_in_transaction(connection, incoming, now)
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
    return stored


def _record_in_transaction(connection: sqlite3.Connection, incoming: Incoming, now: str) -> Stored:
    known = connection.execute(
        "UPDATE nachricht SET received_count = received_count + 1, last_received_at = ? "
        "WHERE nachrichten_uuid = ? RETURNING receipt_id, received_count, first_received_at",
        (now, incoming.nachrichten_uuid),
    ).fetchone()
    if known is not None:
        return Stored(receipt_id=known[0], duplicate=True, received_count=known[1], first_received_at=known[2])
    receipt_id = f"Q-{uuid.uuid4()}"
    connection.execute(
        f"INSERT INTO nachricht ({_NACHRICHT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",  # noqa: S608
        (
            incoming.nachrichten_uuid,
            incoming.fachverfahren,
            incoming.vorgangs_id,
            incoming.sequence,
            incoming.status,
            incoming.status_text,
            incoming.status_time,
            receipt_id,
            now,
            now,
        ),
    )
    connection.execute(
        "INSERT INTO vorgang (fachverfahren, vorgangs_id, nachrichten_uuid, sequence, status, status_text, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (fachverfahren, vorgangs_id) DO UPDATE SET "
        "nachrichten_uuid = excluded.nachrichten_uuid, sequence = excluded.sequence, status = excluded.status, "
        "status_text = excluded.status_text, updated_at = excluded.updated_at "
        "WHERE excluded.sequence > vorgang.sequence",
        (
            incoming.fachverfahren,
            incoming.vorgangs_id,
            incoming.nachrichten_uuid,
            incoming.sequence,
            incoming.status,
            incoming.status_text,
            now,
        ),
    )
    return Stored(receipt_id=receipt_id, duplicate=False, received_count=1, first_received_at=now)


def _select_nachrichten(connection: sqlite3.Connection, where: str, params: tuple[str, ...]) -> list[NachrichtRow]:
    rows = connection.execute(
        f"SELECT {_NACHRICHT_COLUMNS} FROM nachricht WHERE {where} ORDER BY arrival",  # noqa: S608  # fixed clauses
        params,
    ).fetchall()
    return [NachrichtRow(*row) for row in rows]


def _select_vorgaenge(connection: sqlite3.Connection, vorgangs_id: str) -> list[VorgangRow]:
    rows = connection.execute(
        "SELECT fachverfahren, vorgangs_id, nachrichten_uuid, sequence, status, status_text, updated_at "
        "FROM vorgang WHERE vorgangs_id = ? ORDER BY fachverfahren",
        (vorgangs_id,),
    ).fetchall()
    return [VorgangRow(*row) for row in rows]
