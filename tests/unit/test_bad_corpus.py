"""Every case of the bad-input corpus (tests/fixtures/bad/cases.yaml) is refused by its adapter with its reason."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from adapters.inbound.base import InboundRecord
from adapters.inbound.config import build_adapter
from rueckkanal.errors import InputRejected, Reason
from tests.unit.factories import FIXTURES_DIR, shipped_fachverfahren

BAD_DIR = FIXTURES_DIR / "bad"
MANIFEST = yaml.safe_load((BAD_DIR / "cases.yaml").read_text(encoding="utf-8"))
CASES: list[dict[str, Any]] = MANIFEST["cases"]
REQUIRED_KINDS = {
    "malformed-json",
    "invalid-utf8",
    "missing-field",
    "oversized-field",
    "wrong-type-status",
    "unknown-status",
    "xml-billion-laughs",
    "xml-external-entity",
    "xml-doctype",
    "bidi-override-in-status-text",
    "line-separator-in-status-text",
    "zero-width-in-mapped-json",
    "xml-bidi-character-reference",
    "duplicate-key-in-data",
    "duplicate-key-in-mapped-json",
    "duplicate-key-in-headerless-envelope",
}


def test_manifest_covers_the_required_kinds_and_names_real_files_and_reasons() -> None:
    ids = [case["id"] for case in CASES]
    assert len(ids) == len(set(ids))
    assert set(ids) >= REQUIRED_KINDS
    for case in CASES:
        assert (BAD_DIR / case["file"]).is_file(), case["id"]
        assert case["fachverfahren"] in shipped_fachverfahren(), case["id"]
        Reason(case["reason"])


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_case_is_refused_with_its_reason(case: dict[str, Any]) -> None:
    config = shipped_fachverfahren()[case["fachverfahren"]]
    record = InboundRecord(
        topic=config.topic,
        partition=0,
        offset=0,
        timestamp_ms=0,
        key=case["key"].encode() if case.get("key") else None,
        value=(BAD_DIR / case["file"]).read_bytes(),
        headers=tuple((name, str(value).encode()) for name, value in (case.get("headers") or {}).items()),
    )
    with pytest.raises(InputRejected) as caught:
        build_adapter(config).decode(record)
    assert caught.value.reason == Reason(case["reason"]), caught.value.message
