"""Monthly billing periods anchored on a start date."""

from __future__ import annotations

import calendar
from datetime import datetime


def add_months(anchor: datetime, months: int) -> datetime:
    """``anchor`` moved by whole months, the day clamped to the month's length.

    Always computed from the anchor, never from the previous period end, so a
    period anchored on the 31st ends on Feb 28 and then on Mar 31 again.
    """
    month_index = anchor.month - 1 + months
    year, month = anchor.year + month_index // 12, month_index % 12 + 1
    day = min(anchor.day, calendar.monthrange(year, month)[1])
    return anchor.replace(year=year, month=month, day=day)


def period_containing(anchor: datetime, now: datetime) -> tuple[datetime, datetime]:
    """The monthly period [start, end) of an anchor that contains ``now``.

    ``now`` may be in another time zone than the anchor: months are counted on
    the anchor's calendar.
    """
    if now < anchor:
        raise ValueError("now is before the period anchor")
    if anchor.tzinfo is not None and now.tzinfo is not None:
        now = now.astimezone(anchor.tzinfo)
    months = (now.year - anchor.year) * 12 + (now.month - anchor.month)
    while months > 0 and add_months(anchor, months) > now:
        months -= 1
    while add_months(anchor, months + 1) <= now:
        months += 1
    return add_months(anchor, months), add_months(anchor, months + 1)
