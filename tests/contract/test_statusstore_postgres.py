from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from adapters.statusstore import open_store
from adapters.statusstore.base import StatusStore
from tests.contract.statusstore_contract import StatusStoreContract
from tests.support.postgres import admin_dsn, drop_database, fresh_database


class TestPostgresStatusStore(StatusStoreContract):
    @pytest.fixture
    async def database(self) -> AsyncIterator[str]:
        dsn = await fresh_database(admin_dsn())
        yield dsn
        await drop_database(dsn)

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
