"""Usage queries: 15-minute buckets summed into rows by period and dimension.

The stored buckets are UTC quarter hours; a query's range must start and end on
a quarter hour, so its sums are exact. Hours, days, weeks and months are cut in
the query's zone: exact for every zone whose offset is a whole number of
quarter hours, daylight-saving changes included.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from extproc.aggregates import Cell, Metric, parse_field
from extproc.errors import ExtprocError
from extproc.windows import Cycle, window_at

DIMENSIONS = ("consumer", "model", "rule", "status")
PERIODS = ("none", "hour", "day", "week", "month")

# Bounds the work of one query: about 13 months of 15-minute buckets.
MAX_RANGE = timedelta(days=400)


class QueryError(ExtprocError):
    """A usage query that cannot be answered exactly as asked."""


@dataclass(frozen=True, slots=True)
class UsageQuery:
    start: datetime  # aware, on a quarter hour
    end: datetime  # exclusive
    zone: ZoneInfo
    group_by: frozenset[str]
    period: str  # one of PERIODS
    filters: Mapping[str, str]  # dimension -> required value

    @classmethod
    def build(
        cls,
        start: str,
        end: str,
        zone: str,
        group_by: Iterable[str],
        period: str,
        filters: Mapping[str, str],
    ) -> UsageQuery:
        """A checked query; QueryError names the field that is wrong."""
        first, last = parse_instant(start, "start"), parse_instant(end, "end")
        if not first < last <= first + MAX_RANGE:
            raise QueryError("end must be after start, and at most 400 days after")
        try:
            tz = ZoneInfo(zone or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            raise QueryError(f"time_zone {zone!r} is not an IANA zone") from None
        if period not in PERIODS:
            raise QueryError(f"bucket must be one of {', '.join(PERIODS)}")
        wanted = {k: v for k, v in filters.items() if v}
        return cls(first, last, tz, frozenset(group_by), period, wanted)


def parse_instant(text: str, name: str) -> datetime:
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        raise QueryError(f"{name} {text!r} is not an RFC 3339 time") from None
    if instant.tzinfo is None:
        raise QueryError(f"{name} {text!r} needs a UTC offset (or Z)")
    utc = instant.astimezone(UTC)
    if utc.minute % 15 or utc.second or utc.microsecond:
        raise QueryError(
            f"{name} {text!r} must fall on a quarter hour: usage is kept in "
            "15-minute buckets"
        )
    return utc


RowKey = tuple[datetime, datetime, str, str, str, str]


@dataclass
class UsageSums:
    """Running sums of one query, fed one consumer's bucket at a time."""

    query: UsageQuery
    rows: dict[RowKey, dict[Metric, int]]

    @classmethod
    def of(cls, query: UsageQuery) -> UsageSums:
        return cls(query, defaultdict(lambda: defaultdict(int)))

    def add_bucket(
        self, consumer: str, start: datetime, fields: Mapping[bytes, bytes]
    ) -> None:
        period = self._period(start)
        for name, value in fields.items():
            parsed = parse_field(name.decode())
            if parsed is None:
                continue
            metric, cell = parsed
            for key in self._row_keys(period, consumer, cell):
                self.rows[key][metric] += int(value)

    def _row_keys(
        self, period: tuple[datetime, datetime], consumer: str, cell: Cell
    ) -> list[RowKey]:
        """The rows a cell adds to: none when filtered out; one per rule when
        grouped by rule (a call charged on two rules counts for each)."""
        wanted = self.query.filters
        values = {"consumer": consumer, "model": cell.model, "status": cell.status}
        if any(wanted.get(name, value) != value for name, value in values.items()):
            return []
        rules: tuple[str, ...] = cell.rules or ("",)
        if "rule" in wanted:
            if wanted["rule"] not in cell.rules:
                return []
            rules = (wanted["rule"],)
        if "rule" not in self.query.group_by:
            rules = ("",)
        shown = {k: v if k in self.query.group_by else "" for k, v in values.items()}
        return [
            (*period, shown["consumer"], shown["model"], rule, shown["status"])
            for rule in rules
        ]

    def _period(self, start: datetime) -> tuple[datetime, datetime]:
        """The output bucket holding the 15-minute bucket at `start`, cut to the
        query's range."""
        query = self.query
        if query.period == "none":
            return query.start, query.end
        if query.period == "hour":
            local = start.astimezone(query.zone)
            first = start - timedelta(minutes=local.minute)
            last = first + timedelta(hours=1)
        else:
            window = window_at(start, Cycle(query.period), query.zone.key)
            first, last = window.start, window.end
        return max(first, query.start), min(last, query.end)
