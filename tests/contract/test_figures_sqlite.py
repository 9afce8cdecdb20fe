from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.statusstore import open_store
from tests.contract.figures_contract import FiguresContract

TABLES = ("status", "vorgang", "delivery", "dead_letter")


class TestSqliteFigures(FiguresContract):
    @pytest.fixture
    def figures_env(self, tmp_path: Path) -> Iterator[Any]:
        path = tmp_path / "figures.sqlite3"
        with asyncio.Runner() as runner:
            store = runner.run(open_store(f"sqlite:///{path}"))

            async def clear() -> None:
                db = sqlite3.connect(path)
                with db:
                    for table in TABLES:
                        db.execute(f"DELETE FROM {table}")  # noqa: S608  # fixed table names
                db.close()

            yield runner.run, store, clear
            runner.run(store.close())
