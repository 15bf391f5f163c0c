"""The one place that reads the wall clock, so tests can move time."""

from datetime import UTC, date, datetime
from typing import Protocol
from zoneinfo import ZoneInfo


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock tests set and advance explicitly."""

    def __init__(self, start: datetime) -> None:
        self._now = start

    def now(self) -> datetime:
        return self._now

    def set(self, when: datetime) -> None:
        self._now = when


def local_date(at: datetime, zone: str) -> date:
    """The calendar date at instant `at` in IANA time zone `zone` (a gym's "today")."""
    return at.astimezone(ZoneInfo(zone)).date()
