from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from adapters.statusstore import open_store
from adapters.statusstore.base import StatusStore
from tests.contract.statusstore_contract import StatusStoreContract
from tests.support.postgres import admin_dsn, drop_database, fresh_database


class TestPostgresStatusStore(StatusStoreContract):
    @pytest.fixture
    async def database(self) -> AsyncIterator[str]:
        dsn = await fresh_database(admin_dsn())
        self.dsn = dsn
        yield dsn
        await drop_database(dsn)

    async def forget_migration(self, version: int) -> None:
        connection = await asyncpg.connect(self.dsn)
        try:
            await connection.execute("DELETE FROM schema_migrations WHERE version = $1", version)
        finally:
            await connection.close()

    @pytest.fixture
    async def store(self, database: str) -> AsyncIterator[StatusStore]:
        store = await open_store(database)
        yield store
        await store.close()

    @pytest.fixture
    async def second_store(self, database: str, store: StatusStore) -> AsyncIterator[StatusStore]:
        other = await open_store(database)
        yield other
        await other.close()


async def test_replicas_starting_at_once_migrate_a_new_database_once() -> None:
    """Two replicas on an empty database: one creates the tables, the other waits for it and finds them."""
    dsn = await fresh_database(admin_dsn())
    try:
        stores = await asyncio.gather(*(open_store(dsn) for _ in range(4)))
        try:
            assert [await s.migrate() for s in stores] == [[]] * 4
        finally:
            await asyncio.gather(*(s.close() for s in stores))
    finally:
        await drop_database(dsn)
