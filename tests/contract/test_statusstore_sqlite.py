from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.statusstore import open_store
from adapters.statusstore.base import StatusStore
from tests.contract.statusstore_contract import StatusStoreContract


class TestSqliteStatusStore(StatusStoreContract):
    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[StatusStore]:
        self.path = tmp_path / "status.sqlite3"
        store = await open_store(f"sqlite:///{self.path}")
        yield store
        await store.close()

    async def forget_migration(self, version: int) -> None:
        with contextlib.closing(sqlite3.connect(self.path)) as db, db:
            db.execute("DELETE FROM schema_migrations WHERE version = ?", (version,))

    @pytest.fixture
    async def second_store(self, tmp_path: Path, store: StatusStore) -> AsyncIterator[StatusStore]:
        other = await open_store(f"sqlite:///{tmp_path}/status.sqlite3")
        yield other
        await other.close()
