from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.support.kafka import broker


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.path):
            item.add_marker(pytest.mark.kafka)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """The real broker. Never skipped: if none can be had, every integration test errors with the reason."""
    with broker() as bootstrap:
        yield bootstrap


@pytest.fixture
def unique() -> str:
    """A suffix that keeps topic names and consumer groups of one test away from every other test."""
    return uuid.uuid4().hex[:10]
