"""Usage field names and 15-minute buckets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from extproc.aggregates import Cell, Metric, bucket_start, field_name, parse_field
from extproc.store.keys import KeySpace


@given(
    metric=st.sampled_from(list(Metric)),
    status=st.sampled_from(["200", "429", "0"]),
    rules=st.lists(st.text(min_size=1, max_size=12), max_size=3).map(tuple),
    model=st.text(max_size=30),
)
def test_a_field_name_reads_back_as_written(
    metric: Metric, status: str, rules: tuple[str, ...], model: str
) -> None:
    """Any rule names and any model (commas, bars) survive a field round trip."""
    cell = Cell(status, rules, model)

    assert parse_field(field_name(metric, cell)) == (metric, cell)


def test_a_field_of_an_unknown_metric_is_skipped() -> None:
    """A field written by a newer version is ignored, not misread."""
    assert parse_field("zz|200|daily|gpt-4o") is None


@given(st.datetimes(timezones=st.just(UTC)))
def test_a_bucket_is_the_quarter_hour_holding_the_instant(instant: datetime) -> None:
    """The bucket starts on a quarter hour at most 15 minutes before the instant."""
    start = bucket_start(instant)

    assert (start.minute % 15, start.second, start.microsecond) == (0, 0, 0)
    assert start <= instant < start + timedelta(minutes=15)


def test_buckets_are_utc_whatever_the_instant_zone() -> None:
    """An instant given in +05:45 lands in the bucket of its UTC time."""
    kathmandu = timezone(timedelta(hours=5, minutes=45))
    instant = datetime(2025, 1, 16, 0, 7, tzinfo=kathmandu)  # 18:22 UTC the day before

    assert bucket_start(instant) == datetime(2025, 1, 15, 18, 15, tzinfo=UTC)


def test_usage_keys_carry_the_consumer_hash_tag() -> None:
    """Usage and audit keys share the consumer's hash tag with its counters."""
    keys = KeySpace("llmq")

    assert (keys.usage("team-a", "202501151815"), keys.audit("team-a")) == (
        "llmq:{team-a}:u:202501151815",
        "llmq:{team-a}:audit",
    )
