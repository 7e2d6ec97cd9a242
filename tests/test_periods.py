"""Monthly periods: whole months from the anchor, the day clamped to the month's length."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core.periods import add_months, period_containing

UTC = UTC


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0, tz: timezone = UTC) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=tz)


@pytest.mark.parametrize(
    ("months", "expected"),
    [
        (0, at(2026, 1, 31, 9, 30)),
        (1, at(2026, 2, 28, 9, 30)),
        (2, at(2026, 3, 31, 9, 30)),  # back to the 31st: computed from the anchor, not chained
        (3, at(2026, 4, 30, 9, 30)),
        (11, at(2026, 12, 31, 9, 30)),
        (12, at(2027, 1, 31, 9, 30)),
        (13, at(2027, 2, 28, 9, 30)),
        (25, at(2028, 2, 29, 9, 30)),  # leap year
        (-1, at(2025, 12, 31, 9, 30)),
        (-11, at(2025, 2, 28, 9, 30)),
    ],
)
def test_add_months_clamps_the_day(months: int, expected: datetime) -> None:
    assert add_months(at(2026, 1, 31, 9, 30), months) == expected


def test_add_months_leap_day_anchor() -> None:
    anchor = at(2028, 2, 29)
    assert add_months(anchor, 1) == at(2028, 3, 29)
    assert add_months(anchor, 12) == at(2029, 2, 28)
    assert add_months(anchor, 48) == at(2032, 2, 29)


def test_add_months_keeps_time_and_zone() -> None:
    cet = timezone(timedelta(hours=1))
    result = add_months(at(2026, 10, 15, 23, 59, tz=cet), 3)
    assert result == at(2027, 1, 15, 23, 59, tz=cet) and result.tzinfo is cet


anchor_31 = at(2026, 1, 31, 12)


@pytest.mark.parametrize(
    ("now", "start", "end"),
    [
        (anchor_31, anchor_31, at(2026, 2, 28, 12)),  # the anchor itself starts the first period
        (at(2026, 2, 28, 11, 59), anchor_31, at(2026, 2, 28, 12)),  # just before the end
        (
            at(2026, 2, 28, 12),
            at(2026, 2, 28, 12),
            at(2026, 3, 31, 12),
        ),  # the end starts the next: [start, end)
        (at(2026, 3, 1), at(2026, 2, 28, 12), at(2026, 3, 31, 12)),
        (at(2026, 3, 31, 11), at(2026, 2, 28, 12), at(2026, 3, 31, 12)),
        (at(2026, 3, 31, 12), at(2026, 3, 31, 12), at(2026, 4, 30, 12)),
        (at(2027, 2, 1), at(2027, 1, 31, 12), at(2027, 2, 28, 12)),
    ],
)
def test_period_containing_at_boundaries(now: datetime, start: datetime, end: datetime) -> None:
    assert period_containing(anchor_31, now) == (start, end)


def test_period_containing_refuses_a_time_before_the_anchor() -> None:
    with pytest.raises(ValueError):
        period_containing(anchor_31, anchor_31 - timedelta(microseconds=1))


def test_period_containing_with_now_in_another_time_zone() -> None:
    anchor = at(2026, 1, 1)
    # 2026-01-31 23:00 at UTC-5 is already 2026-02-01 04:00 UTC: the February period.
    now = at(2026, 1, 31, 23, tz=timezone(timedelta(hours=-5)))
    assert period_containing(anchor, now) == (at(2026, 2, 1), at(2026, 3, 1))
    # 2026-02-01 00:30 at UTC+2 is still January in UTC.
    now = at(2026, 2, 1, 0, 30, tz=timezone(timedelta(hours=2)))
    assert period_containing(anchor, now) == (at(2026, 1, 1), at(2026, 2, 1))


moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))


@settings(deadline=None, max_examples=300)
@given(
    anchor=moments,
    offset=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3000)),
    tz_hours=st.integers(min_value=-12, max_value=14),
)
def test_period_containing_contains_now_and_lies_on_the_anchor_grid(
    anchor: datetime, offset: timedelta, tz_hours: int
) -> None:
    now = (anchor + offset).astimezone(timezone(timedelta(hours=tz_hours)))
    start, end = period_containing(anchor, now)
    assert start <= now < end
    months = (start.year - anchor.year) * 12 + start.month - anchor.month
    assert start == add_months(anchor, months)
    assert end == add_months(anchor, months + 1)


@settings(deadline=None, max_examples=200)
@given(anchor=moments, months=st.integers(min_value=0, max_value=240))
def test_add_months_is_monotone_and_stays_in_the_target_month(anchor: datetime, months: int) -> None:
    moved, following = add_months(anchor, months), add_months(anchor, months + 1)
    assert moved < following
    assert (moved.year - anchor.year) * 12 + moved.month - anchor.month == months
    assert moved.day == min(anchor.day, calendar.monthrange(moved.year, moved.month)[1])
    assert moved.time() == anchor.time()
