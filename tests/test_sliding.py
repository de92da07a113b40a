"""The sliding-window arithmetic of rate limits (two weighted fixed windows)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from extproc.sliding import SlidingWindow

MINUTE_MS = 60_000
widths = st.sampled_from([1000, MINUTE_MS, 3_600_000, 86_400_000])
counts = st.integers(min_value=0, max_value=10**9)


def test_windows_are_aligned_on_the_epoch() -> None:
    """An instant's window depends on the instant alone, never on earlier calls."""
    window = SlidingWindow.at(1_800_000_000_123, MINUTE_MS)

    assert (30_000_000, 123) == (window.index, window.elapsed_ms)
    assert 1_800_000_060_000 == window.end_ms


def test_count_weighs_the_previous_window_by_what_still_overlaps() -> None:
    """A quarter into the window, three quarters of the previous one still count."""
    window = SlidingWindow.at(15_000, MINUTE_MS)

    assert 30.0 + 5 == window.count(previous=40, current=5)


@given(widths, st.data(), counts, counts)
def test_count_slides_from_both_windows_to_the_current_one(
    width: int, data: st.DataObject, previous: int, current: int
) -> None:
    """The count starts at previous + current and falls steadily towards current."""
    early, late = sorted(
        data.draw(st.integers(min_value=0, max_value=width - 1)) for _ in range(2)
    )
    window = SlidingWindow(width, 7, early)

    assert previous + current == window.count(previous, current, 0)
    assert current <= window.count(previous, current, late)
    assert window.count(previous, current, late) <= window.count(previous, current)


@given(
    widths,
    st.data(),
    st.integers(min_value=0, max_value=10_000),
    st.integers(min_value=0, max_value=10_000),
    st.integers(min_value=1, max_value=10_000),
    st.integers(min_value=1, max_value=10_000),
)
def test_wait_is_the_first_ms_at_which_the_call_fits(
    width: int,
    data: st.DataObject,
    previous: int,
    current: int,
    amount: int,
    limit: int,
) -> None:
    """After `wait_ms` the call fits; one ms earlier it did not (nothing else came)."""
    elapsed = data.draw(st.integers(min_value=0, max_value=width - 1))
    window = SlidingWindow(width, 100, elapsed)

    wait = window.wait_ms(previous, current, amount, limit)

    if amount > limit:
        assert wait is None
        return
    assert wait is not None
    assert fits_after(window, previous, current, amount, limit, wait)
    if wait > 0:
        assert not fits_after(window, previous, current, amount, limit, wait - 1)


def fits_after(
    window: SlidingWindow, previous: int, current: int, amount: int, limit: int, ms: int
) -> bool:
    """Whether the call fits `ms` later, the windows having slid meanwhile."""
    later = SlidingWindow.at(
        window.index * window.width_ms + window.elapsed_ms + ms, window.width_ms
    )
    shift = later.index - window.index
    if shift == 1:
        previous, current = current, 0
    elif shift > 1:
        previous, current = 0, 0
    return later.fits(previous, current, amount, limit)


@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=5 * MINUTE_MS),
            st.integers(min_value=1, max_value=30),
        ),
        max_size=300,
    ),
    st.integers(min_value=30, max_value=200),
)
def test_admissions_stay_within_the_documented_bound(
    calls: list[tuple[int, int]], limit: int
) -> None:
    """Admitted amounts stay within the limit per fixed window and below twice
    the limit in any span of one unit."""
    per_window: dict[int, int] = {}
    admitted: list[tuple[int, int]] = []
    for at, amount in sorted(calls):
        window = SlidingWindow.at(at, MINUTE_MS)
        previous = per_window.get(window.index - 1, 0)
        current = per_window.get(window.index, 0)
        if window.fits(previous, current, amount, limit):
            per_window[window.index] = current + amount
            admitted.append((at, amount))

    assert all(total <= limit for total in per_window.values())
    for end, _ in admitted:
        span = sum(a for at, a in admitted if end - MINUTE_MS < at <= end)
        assert span < 2 * limit


def test_steady_traffic_is_counted_exactly() -> None:
    """With the previous window's traffic spread evenly, the count is exact."""
    # One call per second for two minutes; at 30 s into the second minute the
    # last 60 s held 60 calls: 30 of the previous minute and 30 of this one.
    window = SlidingWindow.at(MINUTE_MS + 30_000, MINUTE_MS)

    assert 60.0 == window.count(previous=60, current=30)


def test_reset_is_when_every_counted_call_has_slid_out() -> None:
    """Counts in the current window clear a full window after it ends."""
    window = SlidingWindow.at(MINUTE_MS + 15_000, MINUTE_MS)

    assert (105_000, 45_000, 0) == (
        window.reset_ms(previous=3, current=2),
        window.reset_ms(previous=3, current=0),
        window.reset_ms(previous=0, current=0),
    )
