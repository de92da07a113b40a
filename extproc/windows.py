"""Natural calendar windows (day, week, month) in a rule's IANA time zone.

A window is the half-open interval [start, end) of instants whose local date, in
the rule's zone, falls in one calendar day, week or month. It starts at the first
instant of its first local date: on a day when local midnight does not exist
(clocks jump from 00:00 to 01:00), that is the instant of the jump.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

_MICROSECOND = timedelta(microseconds=1)


class Cycle(enum.StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


@dataclass(frozen=True, slots=True)
class Window:
    """One cycle of a rule: `start` and `end` are aware UTC instants."""

    cycle: Cycle
    zone: str
    first_day: date
    start: datetime
    end: datetime

    @property
    def id(self) -> str:
        """A stable name for the window, used in Redis keys: its first local date."""
        return self.first_day.strftime("%Y%m%d")

    @property
    def key(self) -> str:
        """The window's name in Redis keys: unique across cycles and zones, so a
        rule whose cycle or zone changes starts counting in new windows."""
        return f"{self.cycle}@{self.zone}:{self.id}"

    @property
    def start_epoch(self) -> int:
        """Window start in Unix seconds."""
        return int(self.start.timestamp())

    @property
    def end_epoch(self) -> int:
        """Window end (exclusive) in Unix seconds."""
        return int(self.end.timestamp())

    def seconds_until_end(self, now: datetime) -> int:
        """Whole seconds from `now` until the window resets, never below 1."""
        remaining = (self.end - now).total_seconds()
        return max(1, int(-(-remaining // 1)))


def local_day_start(day: date, zone: ZoneInfo) -> datetime:
    """The first instant (UTC) whose local date in `zone` is `day` or later.

    That is local midnight, unless a daylight-saving jump skips it; then it is the
    instant of the jump. For a date the zone skipped altogether (Pacific/Apia,
    2011-12-30), that instant is also where the next date starts.
    """
    wall = datetime.combine(day, time(0, 0), tzinfo=zone)
    # fold=0 maps a skipped wall time with the offset from before the jump: this
    # lands on the jump when the jump starts at midnight, past it otherwise.
    instant = wall.astimezone(UTC)
    if (instant - _MICROSECOND).astimezone(zone).date() < day:
        return instant
    # The jump began the evening before (America/Toronto, 1919-03-30 23:30 to
    # 00:30). fold=1 maps midnight with the later offset, to before the jump.
    before = wall.replace(fold=1).astimezone(UTC)
    return _first_second_on_or_after(day, zone, before, instant)


def _first_second_on_or_after(
    day: date, zone: ZoneInfo, before: datetime, after: datetime
) -> datetime:
    """Bisect (before, after] for the first whole second whose local date >= `day`.

    Zone transitions fall on whole UTC seconds, so a second is exact.
    """
    low, high = int(before.timestamp()), int(after.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).date() < day:
            low = middle
        else:
            high = middle
    return datetime.fromtimestamp(high, UTC)


def first_day_of(local: date, cycle: Cycle, week_start: int = 0) -> date:
    """The first local date of the cycle containing `local`.

    `week_start` is the weekday a week begins on (0 = Monday, as ISO 8601).
    """
    if cycle is Cycle.DAY:
        return local
    if cycle is Cycle.WEEK:
        return local - timedelta(days=(local.weekday() - week_start) % 7)
    return local.replace(day=1)


def next_first_day(first: date, cycle: Cycle) -> date:
    """The first local date of the cycle after the one starting on `first`."""
    if cycle is Cycle.DAY:
        return first + timedelta(days=1)
    if cycle is Cycle.WEEK:
        return first + timedelta(days=7)
    if first.month == 12:
        return date(first.year + 1, 1, 1)
    return date(first.year, first.month + 1, 1)


def window_at(
    instant: datetime, cycle: Cycle, zone: str, week_start: int = 0
) -> Window:
    """The window of `cycle` in `zone` that contains the aware `instant`."""
    tz = ZoneInfo(zone)
    first = first_day_of(instant.astimezone(tz).date(), cycle, week_start)
    # Where clocks fall back across midnight, the local date can briefly run
    # backwards; windows are defined on instants, so settle on the one whose
    # [start, end) really holds the instant.
    # One step either way is all a real zone ever needs; the bound turns a
    # broken calendar into an error instead of a hung request.
    for _ in range(8):
        start = local_day_start(first, tz)
        if instant < start:
            first = first_day_of(first - timedelta(days=1), cycle, week_start)
            continue
        following = next_first_day(first, cycle)
        end = local_day_start(following, tz)
        if instant >= end:
            first = following
            continue
        return Window(cycle, zone, first, start, end)
    raise ValueError(f"no {cycle} window in {zone} holds {instant.isoformat()}")
