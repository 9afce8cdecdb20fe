"""The contract of every status store (SQLite, PostgreSQL), one base class subclassed per backend.

A subclass provides ``store`` (a migrated, empty store) and ``second_store`` (another connection to the same
database, as a second replica would have). What holds for each backend:

* migrations run once: a second ``migrate`` applies nothing;
* a batch is stored whole, and its statuses come back in sequence order whatever order they were applied in;
* a redelivered message (same nachrichtenUUID) never makes a second timeline entry, also when two connections
  apply the same batch at the same moment;
* the Vorgang becomes final when its highest-numbered status is terminal; a late, lower-numbered status changes
  nothing; a Widerspruch (430) after the final status opens it again;
* a token digest points at its Vorgang; revoking marks it, once; revoking a Vorgang revokes all its tokens;
* an unknown digest points nowhere;
* a Vorgang is "unpublished" until its tracking link is marked as sent;
* the lifecycle migration (0002) turns a stored 420 of XAntragsstatus 1 into 2.0.0's 410.

A subclass also provides ``forget_migration`` (the test's own SQL), to put a database back to an older version.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from adapters.statusstore.base import StatusStore
from rueckkanal.tracking import Payment, StoredStatus

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
_numbers = itertools.count(1)


def status(vorgang: str, sequence: int, code: str = "200", uuid: str | None = None) -> StoredStatus:
    zahlung = None
    if code == "300":
        zahlung = Payment(
            Decimal("96.00"), "EUR", "Hundesteuer 2024", None, date(2026, 4, 1), "Stadtkasse", "DE90860555921100000123"
        )
    return StoredStatus(
        vorgang_key=f"urn:test|{vorgang}",
        nachrichten_uuid=uuid or f"00000000-0000-4000-8000-{next(_numbers):012d}",
        sequence=sequence,
        status=code,
        status_text="In Bearbeitung",
        zeitpunkt=T0 + timedelta(minutes=sequence),
        leistung="99108001000000",
        fachverfahren="hundesteuer",
        zahlung=zahlung,
    )


class StatusStoreContract:
    async def forget_migration(self, version: int) -> None:
        raise NotImplementedError

    async def test_migrations_run_once(self, store: StatusStore) -> None:
        assert await store.migrate() == []

    async def test_the_lifecycle_migration_reads_a_stored_420_of_version_1_as_410(self, store: StatusStore) -> None:
        old = [status("A", 1, "400"), status("A", 2, "420"), status("A", 3, "410")]
        await store.apply(old, T0)
        await self.forget_migration(2)  # the database as status-web of XAntragsstatus 1 left it
        assert await store.migrate() == [2]
        assert [s.status for s in await store.statuses("urn:test|A")] == ["400", "410", "410"]

    async def test_statuses_come_back_whole_and_in_sequence_order(self, store: StatusStore) -> None:
        batch = [status("A", n, "300" if n == 3 else "200") for n in range(1, 8)]
        shuffled = random.sample(batch, len(batch))
        applied = await store.apply(shuffled[:4], T0)
        applied_later = await store.apply(shuffled[4:], T0)
        assert (applied.stored + applied_later.stored, applied.duplicates + applied_later.duplicates) == (7, 0)
        assert await store.statuses("urn:test|A") == batch  # equal dataclasses: every field survived, payment too
        assert await store.statuses("urn:test|B") == []

    async def test_a_redelivered_message_is_stored_once(self, store: StatusStore) -> None:
        first = status("A", 1, "100")
        second = status("A", 2)
        assert (await store.apply([first, second], T0)).stored == 2
        again = await store.apply([second, first, status("A", 3)], T0)
        assert (again.stored, again.duplicates) == (1, 2)
        assert [s.sequence for s in await store.statuses("urn:test|A")] == [1, 2, 3]

    async def test_two_connections_applying_the_same_batch_at_once_store_it_once(
        self, store: StatusStore, second_store: StatusStore
    ) -> None:
        batch = [status(f"V{v}", n) for v in range(20) for n in range(1, 6)]
        results = await asyncio.gather(
            *(target.apply(random.sample(batch, len(batch)), T0) for target in (store, second_store, store))
        )
        assert sum(r.stored for r in results) == len(batch)
        for v in range(20):
            assert [s.sequence for s in await second_store.statuses(f"urn:test|V{v}")] == [1, 2, 3, 4, 5]
        assert await store.count_statuses() == len(batch)

    async def test_final_when_the_highest_sequence_is_terminal_and_reopened_by_a_widerspruch(
        self, store: StatusStore
    ) -> None:
        await store.add_token("urn:test|A", "d1", T0)
        await store.apply([status("A", 1, "100"), status("A", 2, "400")], T0)
        assert (await store.link("d1")).final_at is None  # type: ignore[union-attr]
        final_at = T0 + timedelta(hours=1)
        await store.apply([status("A", 4, "510")], final_at)
        await store.apply([status("A", 3, "410")], final_at + timedelta(hours=1))  # late, lower: changes nothing
        assert (await store.link("d1")).final_at == final_at  # type: ignore[union-attr]
        await store.apply([status("A", 5, "430")], final_at + timedelta(days=2))  # a Widerspruch reopens a 510
        assert (await store.link("d1")).final_at is None  # type: ignore[union-attr]

    async def test_tokens_point_at_their_vorgang_and_can_be_revoked(self, store: StatusStore) -> None:
        await store.add_token("urn:test|A", "d1", T0)
        await store.add_token("urn:test|A", "d2", T0)
        await store.add_token("urn:test|B", "d3", T0)
        link = await store.link("d1")
        assert link is not None and (link.vorgang_key, link.revoked, link.final_at) == ("urn:test|A", False, None)
        assert await store.link("unknown") is None
        assert await store.revoke("d1", T0) is True
        assert await store.revoke("d1", T0) is True
        assert await store.revoke("unknown", T0) is False
        assert (await store.link("d1")).revoked  # type: ignore[union-attr]
        assert not (await store.link("d2")).revoked  # type: ignore[union-attr]
        assert await store.revoke_vorgang("urn:test|A", T0) == 1
        assert (await store.link("d2")).revoked  # type: ignore[union-attr]
        assert not (await store.link("d3")).revoked  # type: ignore[union-attr]

    async def test_a_token_digest_is_unique(self, store: StatusStore) -> None:
        await store.add_token("urn:test|A", "d1", T0)
        with pytest.raises(Exception):  # noqa: B017  # each driver has its own integrity error
            await store.add_token("urn:test|B", "d1", T0)
        assert (await store.link("d1")).vorgang_key == "urn:test|A"  # type: ignore[union-attr]

    async def test_vorgaenge_without_a_published_link_are_found_until_marked(self, store: StatusStore) -> None:
        await store.apply([status("A", 1, "100"), status("B", 1, "100")], T0)
        assert await store.unpublished(["urn:test|B", "urn:test|A", "urn:test|C"]) == ["urn:test|A", "urn:test|B"]
        await store.mark_published("urn:test|A", T0)
        assert await store.unpublished(["urn:test|A", "urn:test|B"]) == ["urn:test|B"]
