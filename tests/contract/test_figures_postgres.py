from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest

from adapters.statusstore import open_store
from tests.contract.figures_contract import FiguresContract
from tests.support.postgres import admin_dsn, drop_database, fresh_database


class TestPostgresFigures(FiguresContract):
    @pytest.fixture
    def figures_env(self) -> Iterator[Any]:
        with asyncio.Runner() as runner:
            dsn = runner.run(fresh_database(admin_dsn()))
            store = runner.run(open_store(dsn))

            async def clear() -> None:
                conn = await asyncpg.connect(dsn)
                try:
                    await conn.execute("TRUNCATE status, vorgang, delivery, dead_letter")
                finally:
                    await conn.close()

            yield runner.run, store, clear
            runner.run(store.close())
            runner.run(drop_database(dsn))
