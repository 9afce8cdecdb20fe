"""The reference portal's memory: every nachrichtenUUID it took, and the current status of every Vorgang.

SQLite in WAL mode, so a restarted portal still recognises a nachrichtenUUID it quittiert before (the duplicate
case the delivery stage must survive). One thread owns the connection and runs every statement, so the event loop
never blocks on disk and no two statements interleave. Writes are group-committed: the messages that arrive while
one transaction runs go into the next one, and each is answered only once its transaction has committed: the
transaction and the hop to the thread are paid per group, not per message (figures: docs/benchmarks.md).

A Vorgang is identified by its Fachverfahren (URI) and its vorgangsID, as in the message's Vorgangsreferenz: two
Fachverfahren may both have a Vorgang "4711". The current status only moves forward by sequenznummer: a late
message with a lower number is stored (and counted) but does not overwrite a newer status.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
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
    received_count     INTEGER NOT NULL,
    berichtigt         TEXT -- Statusberichtigung 0102: the nachrichtenUUID it corrects
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
    "first_received_at, last_received_at, received_count, berichtigt"
)


@dataclass(frozen=True, slots=True)
class Incoming:
    """What the portal reads from a valid Statusmeldung 0100 or Statusberichtigung 0102 (``berichtigt``: the
    nachrichtenUUID it corrects; ``aktuell``: whether it corrects the current status)."""

    nachrichten_uuid: str
    fachverfahren: str
    vorgangs_id: str
    sequence: int
    status: str
    status_text: str
    status_time: str
    berichtigt: str | None = None
    aktuell: bool = True


@dataclass(frozen=True, slots=True)
class Stored:
    receipt_id: str
    duplicate: bool
    received_count: int
    first_received_at: str
    unknown_target: bool = False  # a 0102 whose corrected message this portal never received: nothing stored


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
    berichtigt: str | None = None
    corrected: bool = False  # in a timeline: this entry replaced the one at its place


def corrected_timeline(rows: list[NachrichtRow]) -> list[NachrichtRow]:
    """The rows of one Vorgang in sequence order, each correction (0102) standing in the place of the message it
    corrects (following chains of corrections), marked ``corrected``; a correction whose target is missing keeps
    its own place."""
    ordered = sorted(rows, key=lambda row: row.sequence)
    place = {row.nachrichten_uuid: index for index, row in enumerate(ordered)}
    shown: dict[int, NachrichtRow] = dict(enumerate(ordered))
    for row in ordered:
        target = row.berichtigt
        if target is None or target not in place:
            continue
        index = place[target]
        del shown[place[row.nachrichten_uuid]]
        place[row.nachrichten_uuid] = index
        shown[index] = dataclasses.replace(row, sequence=ordered[index].sequence, corrected=True)
    return [shown[index] for index in sorted(shown)]


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
        self._waiting: list[tuple[Incoming, asyncio.Future[Stored]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def record(self, incoming: Incoming) -> Stored:
        """Store a message once; a repeated nachrichtenUUID only raises its count and gets the first receipt id."""
        answer: asyncio.Future[Stored] = asyncio.get_running_loop().create_future()
        self._waiting.append((incoming, answer))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_groups())
        return await answer

    async def _write_groups(self) -> None:
        try:
            while self._waiting:
                group, self._waiting = self._waiting, []
                write = functools.partial(_record_group, self._connection, [incoming for incoming, _ in group], _now())
                try:
                    results = await self._run(write)
                except Exception as exc:  # the whole group was rolled back; each waiting request learns why
                    results = [exc] * len(group)
                for (_, answer), result in zip(group, results, strict=True):
                    if answer.done():  # the request went away; its message is stored all the same
                        continue
                    if isinstance(result, BaseException):
                        answer.set_exception(result)
                    else:
                        answer.set_result(result)
        finally:
            self._writer = None

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
    columns = {row[1] for row in connection.execute("PRAGMA table_info(nachricht)")}
    if "berichtigt" not in columns:  # a file written before Statusberichtigungen existed
        connection.execute("ALTER TABLE nachricht ADD COLUMN berichtigt TEXT")
    return connection


def _record_group(connection: sqlite3.Connection, group: list[Incoming], now: str) -> list[Stored | Exception]:
    """One transaction for the group; a message that fails is rolled back alone (savepoint) and gets its error."""
    results: list[Stored | Exception] = []
    connection.execute("BEGIN IMMEDIATE")
    try:
        for incoming in group:
            connection.execute("SAVEPOINT one")
            try:
                results.append(_record_in_transaction(connection, incoming, now))
            except Exception as exc:  # e.g. a constraint; the others of the group are not affected
                connection.execute("ROLLBACK TO one")
                results.append(exc)
            connection.execute("RELEASE one")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
    return results


def _record_in_transaction(connection: sqlite3.Connection, incoming: Incoming, now: str) -> Stored:
    known = connection.execute(
        "UPDATE nachricht SET received_count = received_count + 1, last_received_at = ? "
        "WHERE nachrichten_uuid = ? RETURNING receipt_id, received_count, first_received_at",
        (now, incoming.nachrichten_uuid),
    ).fetchone()
    if known is not None:
        return Stored(receipt_id=known[0], duplicate=True, received_count=known[1], first_received_at=known[2])
    if incoming.berichtigt is not None:
        target = connection.execute(
            "SELECT 1 FROM nachricht WHERE nachrichten_uuid = ? AND fachverfahren = ? AND vorgangs_id = ?",
            (incoming.berichtigt, incoming.fachverfahren, incoming.vorgangs_id),
        ).fetchone()
        if target is None:
            return Stored(receipt_id="", duplicate=False, received_count=0, first_received_at=now, unknown_target=True)
    receipt_id = f"Q-{uuid.uuid4()}"
    connection.execute(
        f"INSERT INTO nachricht ({_NACHRICHT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)",  # noqa: S608
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
            incoming.berichtigt,
        ),
    )
    if not incoming.aktuell:  # a corrected earlier message: the Vorgang's current status stays
        return Stored(receipt_id=receipt_id, duplicate=False, received_count=1, first_received_at=now)
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
