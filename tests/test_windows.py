"""Calendar windows: exact boundaries worked out by hand, then properties.

Each expected start is local midnight minus the UTC offset in force at that midnight
(or the instant of the jump when midnight is skipped), worked out next to the case.
Instants are UTC and written to the hour where that is enough: "2025-03-09T05".
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from extproc.windows import Cycle, Window, local_day_start, window_at

DAY, WEEK, MONTH = Cycle.DAY, Cycle.WEEK, Cycle.MONTH
MICROSECOND = timedelta(microseconds=1)
HOUR = timedelta(hours=1)
CAIRO, SANTIAGO = "Africa/Cairo", "America/Santiago"
NEW_YORK, SHANGHAI = "America/New_York", "Asia/Shanghai"


def utc(text: str) -> datetime:
    """An aware UTC instant from ISO text such as `2025-03-09T05`."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def summary(window: Window) -> tuple[str, datetime, datetime]:
    """The three facts a case pins down: id, start and end."""
    return window.id, window.start, window.end


def expected(window_id: str, start: str, end: str) -> tuple[str, datetime, datetime]:
    """The hand-computed id, start and end of one window."""
    return window_id, utc(start), utc(end)


# A row: (cycle, instant, expected id, expected start, expected end).
Row = tuple[Cycle, str, str, str, str]

# Shanghai is UTC+8 all year: local midnight is 16:00Z the day before.
# 2025-06-15 is a Sunday (ISO week Monday 06-09 to Sunday 06-15); 2026-01-01 is a
# Thursday (ISO week from Monday 2025-12-29). February has 29 days in 2024, 28 in
# 2025.
SHANGHAI_ROWS: list[Row] = [
    (DAY, "2025-06-15T12", "20250615", "2025-06-14T16", "2025-06-15T16"),
    (DAY, "2025-06-15T16", "20250616", "2025-06-15T16", "2025-06-16T16"),
    (WEEK, "2025-06-15T12", "20250609", "2025-06-08T16", "2025-06-15T16"),
    (WEEK, "2025-06-15T16", "20250616", "2025-06-15T16", "2025-06-22T16"),
    (MONTH, "2025-06-15T12", "20250601", "2025-05-31T16", "2025-06-30T16"),
    (DAY, "2025-12-31T16", "20260101", "2025-12-31T16", "2026-01-01T16"),
    (WEEK, "2025-12-31T16", "20251229", "2025-12-28T16", "2026-01-04T16"),
    (MONTH, "2025-12-31T12", "20251201", "2025-11-30T16", "2025-12-31T16"),
    (MONTH, "2025-12-31T16", "20260101", "2025-12-31T16", "2026-01-31T16"),
    (MONTH, "2024-02-29T12", "20240201", "2024-01-31T16", "2024-02-29T16"),
    (MONTH, "2024-02-29T16", "20240301", "2024-02-29T16", "2024-03-31T16"),
    (MONTH, "2025-02-28T12", "20250201", "2025-01-31T16", "2025-02-28T16"),
]

# New York 2025: EST is UTC-5, EDT is UTC-4. Clocks go 02:00 EST -> 03:00 EDT on
# Sunday March 9 and 02:00 EDT -> 01:00 EST on Sunday November 2. The two readings
# of 01:30 on November 2 are 05:30Z (EDT) and 06:30Z (EST). February 2024 is all
# EST, 29 days.
NEW_YORK_ROWS: list[Row] = [
    (DAY, "2025-03-09T12", "20250309", "2025-03-09T05", "2025-03-10T04"),
    (DAY, "2025-11-02T12", "20251102", "2025-11-02T04", "2025-11-03T05"),
    (DAY, "2025-11-02T05:30", "20251102", "2025-11-02T04", "2025-11-03T05"),
    (DAY, "2025-11-02T06:30", "20251102", "2025-11-02T04", "2025-11-03T05"),
    (WEEK, "2025-03-09T12", "20250303", "2025-03-03T05", "2025-03-10T04"),
    (WEEK, "2025-11-02T12", "20251027", "2025-10-27T04", "2025-11-03T05"),
    (MONTH, "2025-03-09T12", "20250301", "2025-03-01T05", "2025-04-01T04"),
    (MONTH, "2025-11-02T12", "20251101", "2025-11-01T04", "2025-12-01T05"),
    (MONTH, "2024-02-29T12", "20240201", "2024-02-01T05", "2024-03-01T05"),
]

# Cairo 2025-04-25: 00:00 EET (UTC+2) jumps to 01:00 EEST (UTC+3), so the 25th
# begins at 22:00Z on the 24th and the 26th at 00:00 UTC+3 = 21:00Z on the 25th.
# The ISO week is Monday 04-21 to Sunday 04-27.
CAIRO_ROWS: list[Row] = [
    (DAY, "2025-04-24T22", "20250425", "2025-04-24T22", "2025-04-25T21"),
    (WEEK, "2025-04-25T12", "20250421", "2025-04-20T22", "2025-04-27T21"),
    (MONTH, "2025-04-25T12", "20250401", "2025-03-31T22", "2025-04-30T21"),
]

# Santiago 2025-09-07: 00:00 UTC-4 jumps to 01:00 UTC-3, so the 7th begins at
# 04:00Z and the 8th at 00:00 UTC-3 = 03:00Z. The ISO week is 09-01 to 09-07.
SANTIAGO_ROWS: list[Row] = [
    (DAY, "2025-09-07T04", "20250907", "2025-09-07T04", "2025-09-08T03"),
    (WEEK, "2025-09-07T12", "20250901", "2025-09-01T04", "2025-09-08T03"),
    (MONTH, "2025-09-07T12", "20250901", "2025-09-01T04", "2025-10-01T03"),
]

# Sunday-start weeks (week_start=6). Shanghai: Sunday 06-15 opens a week, and the
# Saturday before it is in the week of Sunday 06-08. New York: the week of Sunday
# 03-09 loses an hour on its first day.
SHANGHAI_SUNDAY_ROWS: list[Row] = [
    (WEEK, "2025-06-15T12", "20250615", "2025-06-14T16", "2025-06-21T16"),
    (WEEK, "2025-06-14T12", "20250608", "2025-06-07T16", "2025-06-14T16"),
]
NEW_YORK_SUNDAY_ROWS: list[Row] = [
    (WEEK, "2025-03-09T12", "20250309", "2025-03-09T05", "2025-03-16T04"),
]


def cases(zone: str, rows: list[Row], week_start: int = 0) -> list[pytest.ParameterSet]:
    """One zone's rows as test cases named zone, week start, cycle and instant."""
    return [
        pytest.param(
            zone, week_start, *row, id=f"{zone}-{week_start}-{row[0]}-{row[1]}"
        )
        for row in rows
    ]


WINDOW_CASES = [
    *cases(SHANGHAI, SHANGHAI_ROWS),
    *cases(NEW_YORK, NEW_YORK_ROWS),
    *cases(CAIRO, CAIRO_ROWS),
    *cases(SANTIAGO, SANTIAGO_ROWS),
    *cases(SHANGHAI, SHANGHAI_SUNDAY_ROWS, week_start=6),
    *cases(NEW_YORK, NEW_YORK_SUNDAY_ROWS, week_start=6),
]


@pytest.mark.parametrize(
    ("zone", "week_start", "cycle", "instant", "win", "start", "end"), WINDOW_CASES
)
def test_window_bounds(
    zone: str,
    week_start: int,
    cycle: Cycle,
    instant: str,
    win: str,
    start: str,
    end: str,
) -> None:
    """A window runs from its first local date's first instant to the next one's."""
    window = window_at(utc(instant), cycle, zone, week_start)
    assert expected(win, start, end) == summary(window)


# Hours in the New York windows that hold a 2025 change: a day, 7 days and 31 or 30
# days of 24 hours, one less in March and one more in November.
NEW_YORK_LENGTHS = [
    (DAY, "2025-03-09T12", 23),
    (DAY, "2025-11-02T12", 25),
    (WEEK, "2025-03-09T12", 7 * 24 - 1),
    (WEEK, "2025-11-02T12", 7 * 24 + 1),
    (MONTH, "2025-03-09T12", 31 * 24 - 1),
    (MONTH, "2025-11-02T12", 30 * 24 + 1),
]


@pytest.mark.parametrize(("cycle", "instant", "hours"), NEW_YORK_LENGTHS)
def test_new_york_windows_stretch_with_the_clock(
    cycle: Cycle, instant: str, hours: int
) -> None:
    """New York windows lose an hour in March and gain one in November 2025."""
    window = window_at(utc(instant), cycle, NEW_YORK)
    assert hours * HOUR == window.end - window.start


# (zone, cycle, first instant of a window, its id, the previous window's id)
BOUNDARY_CASES = [
    (CAIRO, DAY, "2025-04-24T22", "20250425", "20250424"),
    (SANTIAGO, DAY, "2025-09-07T04", "20250907", "20250906"),
    (NEW_YORK, DAY, "2025-03-10T04", "20250310", "20250309"),
    (NEW_YORK, DAY, "2025-11-03T05", "20251103", "20251102"),
    (SHANGHAI, WEEK, "2025-06-15T16", "20250616", "20250609"),
    (SHANGHAI, MONTH, "2025-12-31T16", "20260101", "20251201"),
    (SHANGHAI, MONTH, "2024-02-29T16", "20240301", "20240201"),
]


@pytest.mark.parametrize(
    ("zone", "cycle", "first", "now_id", "before_id"), BOUNDARY_CASES
)
def test_boundary_instant_belongs_to_the_window_it_starts(
    zone: str, cycle: Cycle, first: str, now_id: str, before_id: str
) -> None:
    """A window's first instant is in it; one microsecond earlier is the last one."""
    start = utc(first)
    current = window_at(start, cycle, zone)
    previous = window_at(start - MICROSECOND, cycle, zone)
    assert (now_id, start) == (current.id, current.start)
    assert (before_id, start) == (previous.id, previous.end)


def test_window_of_an_instant_given_in_another_offset() -> None:
    """An instant written as +08:00 gives the same window as its UTC spelling."""
    local = datetime.fromisoformat("2025-06-16T00:00:00+08:00")
    want = window_at(utc("2025-06-15T16"), DAY, SHANGHAI)
    assert want == window_at(local, DAY, SHANGHAI)


def test_local_date_running_backwards_stays_in_the_new_day() -> None:
    """After a fall-back past midnight, the day that began keeps the repeated hour.

    Goose Bay went 00:00:59 UTC-3 -> 23:01 UTC-4 on 2010-11-07: the 7th began at
    00:00 UTC-3 = 03:00Z, at 03:30Z the clock read 23:30 on the 6th, and the 8th
    began at 00:00 UTC-4 = 04:00Z.
    """
    window = window_at(utc("2010-11-07T03:30"), DAY, "America/Goose_Bay")
    want = expected("20101107", "2010-11-07T03", "2010-11-08T04")
    assert want == summary(window)


def test_jump_across_midnight_starts_the_day_at_the_jump() -> None:
    """A jump that skips midnight from the evening before starts the day at the jump.

    Toronto went 23:30 UTC-5 on 1919-03-30 -> 00:30 UTC-4 on the 31st, at 04:30Z:
    the 31st began then, 23.5 hours after the 30th (05:00Z), and ended at 00:00
    UTC-4 on April 1, 04:00Z, 23.5 hours later.
    """
    jump = utc("1919-03-31T04:30")
    after = window_at(jump + timedelta(minutes=15), DAY, "America/Toronto")
    before = window_at(jump - MICROSECOND, DAY, "America/Toronto")
    assert expected("19190331", "1919-03-31T04:30", "1919-04-01T04") == summary(after)
    assert expected("19190330", "1919-03-30T05", "1919-03-31T04:30") == summary(before)


def test_skipped_date_gives_no_window_of_its_own() -> None:
    """Where a date was skipped, the day before it ends where the day after begins.

    Apia went 23:59:59 UTC-10 on 2011-12-29 -> 00:00 UTC+14 on the 31st at 10:00Z.
    """
    jump = utc("2011-12-30T10")
    after = window_at(jump, DAY, "Pacific/Apia")
    before = window_at(jump - MICROSECOND, DAY, "Pacific/Apia")
    assert expected("20111231", "2011-12-30T10", "2011-12-31T10") == summary(after)
    assert expected("20111229", "2011-12-29T10", "2011-12-30T10") == summary(before)


def test_week_named_after_a_skipped_first_date() -> None:
    """A week whose first date was skipped keeps that date as its id.

    A Friday-start Apia week of 2011-12-30 begins at the jump (10:00Z) and runs six
    days, to 00:00 UTC+14 on Friday 2012-01-06, which is 10:00Z on the 5th.
    """
    window = window_at(utc("2012-01-01T00"), WEEK, "Pacific/Apia", week_start=4)
    want = expected("20111230", "2011-12-30T10", "2012-01-05T10")
    assert want == summary(window)


# A Shanghai day ending at 2025-06-15T16:00Z; `now` is `before_end` earlier than
# that end, and `want` is the time left rounded up to whole seconds, at least 1.
SECONDS_UNTIL_END_CASES = [
    (timedelta(hours=1), 3600),
    (timedelta(hours=1, microseconds=1), 3601),
    (timedelta(seconds=1.5), 2),
    (MICROSECOND, 1),
    (timedelta(0), 1),
    (timedelta(seconds=-10), 1),
    (timedelta(days=30, microseconds=1), 30 * 86_400 + 1),
]


@pytest.mark.parametrize(("before_end", "want"), SECONDS_UNTIL_END_CASES)
def test_seconds_until_end(before_end: timedelta, want: int) -> None:
    """Seconds until the end round up and never fall below one."""
    window = window_at(utc("2025-06-15T12"), DAY, SHANGHAI)
    assert want == window.seconds_until_end(window.end - before_end)


ZONES = [
    "UTC",
    SHANGHAI,
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Australia/Lord_Howe",
    "Pacific/Apia",
    SANTIAGO,
    NEW_YORK,
    "America/Goose_Bay",
    CAIRO,
    "Europe/London",
]

# Wide enough for local mean time, wartime rules and the rules past 2037.
instants = st.datetimes(
    min_value=datetime(1850, 1, 1),
    max_value=datetime(2200, 1, 1),
    timezones=st.just(UTC),
)
cycles = st.sampled_from(list(Cycle))
zones = st.sampled_from(ZONES)
week_starts = st.integers(min_value=0, max_value=6)
# 200 draws each keep the whole file near a second of CPU time.
property_settings = settings(max_examples=200, deadline=None)


def local_date(instant: datetime, zone: str) -> date:
    """The wall-clock date of `instant` in `zone`."""
    return instant.astimezone(ZoneInfo(zone)).date()


@property_settings
@given(instants, cycles, zones, week_starts)
def test_window_holds_its_instant(
    instant: datetime, cycle: Cycle, zone: str, week_start: int
) -> None:
    """Every instant lies in [start, end) of its window, both aware UTC."""
    window = window_at(instant, cycle, zone, week_start)
    assert window.start <= instant < window.end
    assert window.start.tzinfo is UTC
    assert window.end.tzinfo is UTC


@property_settings
@given(instants, cycles, zones, week_starts)
def test_windows_tile_time(
    instant: datetime, cycle: Cycle, zone: str, week_start: int
) -> None:
    """The next window starts at this end; the previous one ends at this start."""
    window = window_at(instant, cycle, zone, week_start)
    following = window_at(window.end, cycle, zone, week_start)
    previous = window_at(window.start - MICROSECOND, cycle, zone, week_start)
    assert (window.end, window.start) == (following.start, previous.end)


@property_settings
@given(instants, cycles, zones, week_starts)
def test_window_is_named_by_the_local_date_of_its_start(
    instant: datetime, cycle: Cycle, zone: str, week_start: int
) -> None:
    """The id is the local date of the start, unless a jump skipped that date."""
    window = window_at(instant, cycle, zone, week_start)
    at_start = local_date(window.start, zone)
    just_before = local_date(window.start - MICROSECOND, zone)
    assert window.id == window.first_day.strftime("%Y%m%d")
    assert just_before < window.first_day <= at_start
    if at_start - just_before == timedelta(days=1):
        assert window.first_day == at_start


@property_settings
@given(instants, zones)
def test_local_day_start_is_the_first_instant_of_the_date(
    instant: datetime, zone: str
) -> None:
    """A local date starts where the wall clock first reaches it."""
    day = local_date(instant, zone)
    start = local_day_start(day, ZoneInfo(zone))
    assert local_date(start - MICROSECOND, zone) < day <= local_date(start, zone)
