import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.portal.sim.store import Incoming, SimStore

FV = "urn:de:leipzig:fachverfahren:hundesteuer"


def incoming(uuid: str, sequence: int, status: str = "200", vorgang: str = "4711", fv: str = FV) -> Incoming:
    return Incoming(
        nachrichten_uuid=uuid,
        fachverfahren=fv,
        vorgangs_id=vorgang,
        sequence=sequence,
        status=status,
        status_text=f"Status {status}",
        status_time="2026-03-01T12:00:00+01:00",
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SimStore]:
    store = SimStore(tmp_path / "portal.sqlite3")
    yield store
    await store.close()


async def test_first_arrival_is_stored_and_repeats_only_count(store: SimStore) -> None:
    first = await store.record(incoming("u1", 1))
    second = await store.record(incoming("u1", 1))
    third = await store.record(incoming("u1", 1))
    assert (first.duplicate, second.duplicate, third.duplicate) == (False, True, True)
    assert second.receipt_id == first.receipt_id
    assert second.first_received_at == first.first_received_at
    assert third.received_count == 3
    rows = await store.nachrichten("4711")
    assert len(rows) == 1
    assert rows[0].received_count == 3


async def test_stale_sequence_is_kept_in_order_but_does_not_overwrite_status(store: SimStore) -> None:
    await store.record(incoming("u1", 1, "100"))
    await store.record(incoming("u3", 3, "220"))
    await store.record(incoming("u2", 2, "200"))  # arrives late
    [vorgang] = await store.vorgaenge("4711")
    assert (vorgang.status, vorgang.sequence, vorgang.nachrichten_uuid) == ("220", 3, "u3")
    assert [row.nachrichten_uuid for row in await store.nachrichten("4711")] == ["u1", "u3", "u2"]


async def test_same_vorgang_id_in_two_fachverfahren_stays_apart(store: SimStore) -> None:
    other = "urn:de:leipzig:fachverfahren:bewohnerparken"
    await store.record(incoming("a", 5, "400"))
    await store.record(incoming("b", 1, "100", fv=other))
    current = {row.fachverfahren: row.status for row in await store.vorgaenge("4711")}
    assert current == {FV: "400", other: "100"}
    assert [row.nachrichten_uuid for row in await store.nachrichten("4711", other)] == ["b"]


async def test_records_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "portal.sqlite3"
    before = SimStore(path)
    stored = await before.record(incoming("u1", 1))
    await before.close()
    after = SimStore(path)
    try:
        again = await after.record(incoming("u1", 1))
        assert again.duplicate is True
        assert again.receipt_id == stored.receipt_id
        assert again.received_count == 2
        assert await after.nachricht("missing") is None
    finally:
        await after.close()


async def test_messages_arriving_together_share_a_transaction_and_are_each_answered(store: SimStore) -> None:
    # All twelve are waiting before the first write ends, so at most two groups are written; the repeat of u0 in
    # the same group must still be recognised as a duplicate of the first.
    messages = [incoming(f"u{i}", i + 1, vorgang="G") for i in range(10)] + [incoming("u0", 1, vorgang="G")] * 2
    results = await asyncio.gather(*(store.record(message) for message in messages))
    assert [result.duplicate for result in results] == [False] * 10 + [True, True]
    assert results[10].receipt_id == results[0].receipt_id
    rows = await store.nachrichten("G")
    assert [row.nachrichten_uuid for row in rows] == [f"u{i}" for i in range(10)]
    assert rows[0].received_count == 3
    [vorgang] = await store.vorgaenge("G")
    assert vorgang.sequence == 10


async def test_a_message_the_database_refuses_fails_alone_in_its_group(store: SimStore) -> None:
    broken = Incoming(
        nachrichten_uuid="bad",
        fachverfahren=None,  # type: ignore[arg-type]  # NOT NULL: what a bug in the portal's reader would pass
        vorgangs_id="G",
        sequence=2,
        status="200",
        status_text="x",
        status_time="2026-03-01T12:00:00+01:00",
    )
    results = await asyncio.gather(
        store.record(incoming("ok1", 1, vorgang="G")),
        store.record(broken),
        store.record(incoming("ok2", 3, vorgang="G")),
        return_exceptions=True,
    )
    assert isinstance(results[1], sqlite3.IntegrityError)
    assert [row.nachrichten_uuid for row in await store.nachrichten("G")] == ["ok1", "ok2"]
    assert (await store.record(incoming("ok3", 4, vorgang="G"))).duplicate is False  # the store goes on
