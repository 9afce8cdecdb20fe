from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest

from tests.support.kafka import broker
from tests.support.kafka_io import delete_topics_containing

_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.path):
            item.add_marker(pytest.mark.kafka)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item) -> Iterator[None]:
    report: pytest.TestReport = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """The real broker. Never skipped: if none can be had, every integration test errors with the reason."""
    with broker() as bootstrap:
        yield bootstrap


@pytest.fixture
def unique(request: pytest.FixtureRequest) -> Iterator[str]:
    """A suffix that keeps topic names and consumer groups of one test away from every other test.

    A passed test's topics are deleted afterwards, so a long-lived development broker does not fill up with them
    (hundreds of runs slow every later one down); a failed test's stay on the broker for inspection.
    """
    marker = uuid.uuid4().hex[:10]
    bootstrap = request.getfixturevalue("kafka_bootstrap") if "kafka_bootstrap" in request.fixturenames else None
    yield marker
    reports = request.node.stash.get(_REPORTS, {})
    if bootstrap is not None and all(r.passed for r in reports.values()):
        asyncio.run(delete_topics_containing(bootstrap, marker))
