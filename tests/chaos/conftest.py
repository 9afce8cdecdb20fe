"""The chaos and fuzz tier: real worker processes against bad input, a misbehaving portal and a failing broker.

Every test here is marked ``chaos`` and ``kafka``. Random choices come from one seed per run (``RK_CHAOS_SEED``, or
a fresh one that is printed and written to ``var/chaos/last-run.json``), so a failure can be replayed exactly.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator

import pytest

from tests.integration.conftest import kafka_bootstrap, pytest_runtest_makereport, unique
from tests.support.chaos import ChaosReport

__all__ = ["kafka_bootstrap", "pytest_runtest_makereport", "unique"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/chaos" in str(item.path):
            item.add_marker(pytest.mark.chaos)
            item.add_marker(pytest.mark.kafka)


@pytest.fixture(scope="session")
def chaos_report() -> Iterator[ChaosReport]:
    """The counts of this run, written to var/chaos/last-run.json after every test that adds to them."""
    given = os.environ.get("RK_CHAOS_SEED")
    seed = int(given) if given else random.SystemRandom().randrange(2**31)
    print(f"\nchaos tier: RK_CHAOS_SEED={seed}")
    report = ChaosReport(seed)
    yield report
    report.write()


@pytest.fixture
def chaos_rng(chaos_report: ChaosReport, request: pytest.FixtureRequest) -> random.Random:
    """A random source for one test, derived from the run's seed and the test's name (independent of test order)."""
    return random.Random(f"{chaos_report.seed}:{request.node.name}")  # test dice
