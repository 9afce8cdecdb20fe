from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.statusstore import open_store
from adapters.statusstore.base import StatusStore
from tests.contract.statusstore_contract import StatusStoreContract


class TestSqliteStatusStore(StatusStoreContract):
    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[StatusStore]:
        store = await open_store(f"sqlite:///{tmp_path}/status.sqlite3")
        yield store
        await store.close()

    @pytest.fixture
    async def second_store(self, tmp_path: Path, store: StatusStore) -> AsyncIterator[StatusStore]:
        other = await open_store(f"sqlite:///{tmp_path}/status.sqlite3")
        yield other
        await other.close()
