"""Fixtures every tier shares: the throwaway CA and signing pair of the ZBP tests (tests/support/zbp_ca.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.zbp_ca import Ca, SigningPair, issue, make_ca


@pytest.fixture(scope="session")
def zbp_ca() -> Ca:
    """One CA per test session; its key never leaves memory."""
    return make_ca()


@pytest.fixture
def zbp_signing(zbp_ca: Ca, tmp_path: Path) -> SigningPair:
    """A signing key and certificate issued by the session's CA, in a fresh secrets directory."""
    return issue(zbp_ca, tmp_path / "secrets")


@pytest.fixture
def zbp_ca_file(zbp_ca: Ca, tmp_path: Path) -> Path:
    return zbp_ca.write(tmp_path / "zbp-ca.pem")
