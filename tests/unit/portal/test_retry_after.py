from datetime import UTC, datetime

import pytest

from adapters.portal.retry_after import parse_retry_after

NOW = datetime(2026, 10, 21, 7, 27, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 5 ", 5.0),
        ("0", 0.0),
        ("Wed, 21 Oct 2026 07:28:00 GMT", 60.0),  # IMF-fixdate
        ("Wednesday, 21-Oct-26 07:28:30 GMT", 90.0),  # obsolete RFC 850 form
        ("Wed Oct 21 07:27:10 2026", 10.0),  # obsolete asctime form, no zone: GMT by definition
        ("Wed, 21 Oct 2026 07:00:00 GMT", 0.0),  # a date in the past means: now
    ],
)
def test_seconds_and_http_dates_become_seconds_from_now(header: str, seconds: float) -> None:
    assert parse_retry_after(header, now=NOW) == seconds


@pytest.mark.parametrize("header", [None, "", "-1", "1.5", "soon", "٣", "Wed, 99 Foo 2026 07:28:00 GMT"])
def test_unreadable_values_are_ignored_not_trusted(header: str | None) -> None:
    assert parse_retry_after(header, now=NOW) is None


def test_both_forms_are_capped() -> None:
    assert parse_retry_after("86400", now=NOW, cap_s=300) == 300
    assert parse_retry_after("Thu, 22 Oct 2026 07:27:00 GMT", now=NOW, cap_s=300) == 300
    assert parse_retry_after("299", now=NOW, cap_s=300) == 299
