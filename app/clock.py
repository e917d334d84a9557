"""The partnership's calendar: due dates and "overdue" are days in UK local time."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

PARTNERSHIP_TIME_ZONE = ZoneInfo("Europe/London")

# Dates the service plans with; anything outside is a typing mistake, refused with a 422.
EARLIEST_YEAR, LATEST_YEAR = 2000, 2100


def today() -> date:
    return datetime.now(PARTNERSHIP_TIME_ZONE).date()


def plausible(value: date) -> bool:
    return EARLIEST_YEAR <= value.year <= LATEST_YEAR
