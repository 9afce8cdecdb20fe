"""The throwaway PostgreSQL cluster of a test run (scripts/postgres.sh, started by scripts/test.sh).

Its DSN comes in ``RK_TEST_POSTGRES_DSN``. Without it the PostgreSQL tests fail and say how to get one; they never
skip. Each test gets a database of its own (:func:`fresh_database`), dropped when the test passed.
"""

from __future__ import annotations

import os
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

ENV = "RK_TEST_POSTGRES_DSN"


def admin_dsn() -> str:
    dsn = os.environ.get(ENV)
    if not dsn:
        pytest.fail(
            f"{ENV} is not set: the status store tests need a real PostgreSQL. Run them through scripts/test.sh, "
            f"or start one with `bash scripts/postgres.sh start` and export {ENV}=<the DSN it prints>",
            pytrace=False,
        )
    return dsn


def with_database(dsn: str, database: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


async def fresh_database(dsn: str) -> str:
    """A new empty database on the cluster of ``dsn``; returns its DSN."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return with_database(dsn, name)


async def drop_database(dsn: str) -> None:
    name = urlsplit(dsn).path.lstrip("/")
    conn = await asyncpg.connect(admin_dsn())
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
