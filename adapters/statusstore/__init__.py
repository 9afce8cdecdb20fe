"""Status stores of status-web: SQLite (embedded) and PostgreSQL (several replicas), one protocol."""

from __future__ import annotations

from pathlib import Path

from adapters.statusstore.base import StatusStore
from rueckkanal.errors import ConfigError


async def open_store(url: str) -> StatusStore:
    """The store a database URL names, migrated: ``sqlite:///absolute/path.sqlite3`` or ``postgresql://…``."""
    if url.startswith("sqlite:///"):
        from adapters.statusstore.sqlite import SqliteStatusStore, SqliteStoreConfig

        store: StatusStore = SqliteStatusStore(SqliteStoreConfig(path=Path(url.removeprefix("sqlite://"))))
    elif url.startswith(("postgresql://", "postgres://")):
        from pydantic import SecretStr

        from adapters.statusstore.postgres import PostgresStatusStore, PostgresStoreConfig

        store = await PostgresStatusStore.connect(PostgresStoreConfig(dsn=SecretStr(url)))
    else:
        raise ConfigError("status_web.database_url must start with sqlite:/// or postgresql://")
    await store.migrate()
    return store
