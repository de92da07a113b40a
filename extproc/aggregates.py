"""Usage aggregates: each consumer's totals in 15-minute UTC buckets, in Redis.

A settled call's totals are bumped by the settlement script itself (its generic
increments), so they cost no extra round trip and are counted exactly once; a
refused call is counted beside its event. Buckets are a quarter hour long so
that days, weeks and months are exact in every zone whose offset is a whole
number of quarter hours (Asia/Kolkata, Asia/Kathmandu and all rule zones).

One hash per consumer and bucket; a field is `<metric>|<status>|<rules>|<model>`.
`rules` lists every rule the call was charged on (the refusing rule for a
refused call), so a call appears once whatever rules bound it: sums by consumer
or model count it once, and a query by rule credits it to each of its rules.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, unquote

from extproc.apis.usage import Usage
from extproc.call import Call
from extproc.events import Decision
from extproc.store.keys import KeySpace
from extproc.store.quota_store import Increment

BUCKET = timedelta(minutes=15)

# Client-chosen model names are cut to this many characters, so that one field
# name stays small whatever a client sends.
MAX_MODEL_CHARS = 100


class Metric(enum.StrEnum):
    """What a field counts; one letter each, as every field is stored per bucket."""

    REQUESTS = "n"
    REFUSED = "x"
    INPUT = "i"
    OUTPUT = "o"
    TOTAL = "t"
    CACHED = "c"
    REASONING = "r"
    COST_MICROS = "$"


@dataclass(frozen=True, slots=True)
class Cell:
    """The dimensions shared by the calls that one group of fields counts."""

    status: str
    rules: tuple[str, ...]
    model: str


def bucket_start(instant: datetime) -> datetime:
    """The first instant (UTC) of the 15-minute bucket holding `instant`."""
    utc = instant.astimezone(UTC)
    return utc.replace(minute=utc.minute - utc.minute % 15, second=0, microsecond=0)


def bucket_id(start: datetime) -> str:
    return start.astimezone(UTC).strftime("%Y%m%d%H%M")


def buckets_between(start: datetime, end: datetime) -> Iterator[datetime]:
    """Every bucket start in [start, end); both ends lie on a quarter hour."""
    at = start.astimezone(UTC)
    while at < end:
        yield at
        at += BUCKET


def field_name(metric: Metric, cell: Cell) -> str:
    rules = ",".join(quote(rule, safe="") for rule in cell.rules)
    return f"{metric}|{cell.status}|{rules}|{cell.model}"


def parse_field(name: str) -> tuple[Metric, Cell] | None:
    """The metric and cell of a stored field; None for a field this code does
    not know (written by a newer version)."""
    parts = name.split("|", 3)
    if len(parts) != 4 or parts[0] not in Metric._value2member_map_:
        return None
    metric, status, rules, model = parts
    names = tuple(unquote(rule) for rule in rules.split(",")) if rules else ()
    return Metric(metric), Cell(status, names, model)


@dataclass(frozen=True, slots=True)
class UsageAggregates:
    """Turns a finished call into the increments of its consumer's bucket."""

    keys: KeySpace
    retention_s: int  # a bucket is kept this long after it ends

    def for_call(
        self, call: Call, usage: Usage, now: datetime, cost_micros: int | None = None
    ) -> tuple[Increment, ...]:
        """Increments for a settled or refused call; none for any other call.
        `cost_micros` is the call's cost, already worked out for its event."""
        if call.consumer is None or call.request is None:
            return ()
        model = call.request.model[:MAX_MODEL_CHARS]
        if call.reserved:
            # Bucketed at admission, the instant that chose the rules' windows,
            # so usage over a window matches the window's `used`.
            rules = tuple(charge.rule.name for charge in call.charges)
            cell = Cell(str(call.status), rules, model)
            at = call.admitted_at or now
            counts = _settled(usage)
            counts[Metric.COST_MICROS] = cost_micros or 0
            return self.increments(call.consumer.name, at, cell, counts)
        refusal = _refused_by(call)
        if call.decision is Decision.REFUSED and refusal is not None:
            cell = Cell(str(call.status), (refusal,), model)
            counts = {Metric.REQUESTS: 1, Metric.REFUSED: 1}
            return self.increments(call.consumer.name, now, cell, counts)
        return ()

    def increments(
        self,
        consumer: str,
        at: datetime,
        cell: Cell,
        counts: dict[Metric, int],
    ) -> tuple[Increment, ...]:
        """The increments adding `counts` to `cell` in the bucket holding `at`."""
        start = bucket_start(at)
        key = self.keys.usage(consumer, bucket_id(start))
        expire_at = int((start + BUCKET).timestamp()) + self.retention_s
        return tuple(
            Increment(key, field_name(metric, cell), delta, expire_at)
            for metric, delta in counts.items()
            if delta  # a zero would only cost memory
        )


def _settled(usage: Usage) -> dict[Metric, int]:
    return {
        Metric.REQUESTS: 1,
        Metric.INPUT: usage.input_tokens,
        Metric.OUTPUT: usage.output_tokens,
        Metric.TOTAL: usage.total_tokens,
        Metric.CACHED: usage.cached_input_tokens,
        Metric.REASONING: usage.reasoning_tokens,
    }


def _refused_by(call: Call) -> str | None:
    """The name of the quota rule or rate limit that refused the call, if any."""
    admission = call.admission
    if admission is None:
        return None
    if admission.refused_by is not None:
        return admission.refused_by.rule.name
    if admission.rate_refused_by is not None:
        return admission.rate_refused_by.limit.name
    return None
