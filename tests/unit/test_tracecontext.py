from __future__ import annotations

import pytest

from rueckkanal.tracecontext import valid_traceparent

GOOD = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.mark.parametrize(
    "value",
    [GOOD, GOOD.encode(), "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", GOOD[:-2] + "00"],
)
def test_valid_values_pass_unchanged(value: str | bytes) -> None:
    expected = value.decode() if isinstance(value, bytes) else value
    assert valid_traceparent(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        GOOD + "\r\nX-Evil: 1",
        GOOD.upper(),
        GOOD + "-extra",  # version 00 has no extra part
        "ff" + GOOD[2:],
        "00-" + "0" * 32 + "-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-" + "0" * 16 + "-01",
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-" + "a" * 100_000,
        b"\xff" * 55,
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
    ],
)
def test_invalid_values_are_dropped(value: str | bytes | None) -> None:
    assert valid_traceparent(value) is None
