"""Sliding windows of rate limits, estimated from two weighted fixed windows.

Time is cut into fixed windows of one unit aligned on the Unix epoch: window `k`
of width `W` ms covers [k * W, (k + 1) * W). At `e` ms into window `k`, a limit's
count is `previous * (W - e) / W + current`: the current window's amount plus
the share of the previous one that a sliding window of width W still covers,
assuming the previous window's traffic was spread evenly. Any span of one unit
that ends at an admission holds at most `limit + previous * e / W`, below twice
the limit; each fixed window alone holds at most the limit.

The reservation script computes the same count, with the same floating-point
operations in the same order, so the headers and retry times derived here agree
with what the script decided.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SlidingWindow:
    """Where an instant falls among one limit's fixed windows."""

    width_ms: int
    index: int  # the current fixed window's number: now_ms // width_ms
    elapsed_ms: int  # time since the current fixed window began, ms

    @classmethod
    def at(cls, now_ms: int, width_ms: int) -> SlidingWindow:
        index, elapsed = divmod(now_ms, width_ms)
        return cls(width_ms, index, elapsed)

    @property
    def end_ms(self) -> int:
        """When the current fixed window ends, Unix ms."""
        return (self.index + 1) * self.width_ms

    def count(self, previous: int, current: int, elapsed_ms: int = -1) -> float:
        """The sliding count `elapsed_ms` into the window (default: now)."""
        elapsed = self.elapsed_ms if elapsed_ms < 0 else elapsed_ms
        return previous * (self.width_ms - elapsed) / self.width_ms + current

    def fits(self, previous: int, current: int, amount: int, limit: int) -> bool:
        """The script's admission test, for an instant in the current window."""
        return self.count(previous, current) + amount <= limit

    def remaining(self, previous: int, current: int, limit: int) -> int:
        """Whole units left under the limit now."""
        return max(0, math.floor(limit - self.count(previous, current)))

    def reset_ms(self, previous: int, current: int) -> int:
        """Time until everything counted now has slid out of the window, ms."""
        if current > 0:
            return 2 * self.width_ms - self.elapsed_ms
        if previous > 0:
            return self.width_ms - self.elapsed_ms
        return 0

    def wait_ms(
        self, previous: int, current: int, amount: int, limit: int
    ) -> int | None:
        """Time until a call of `amount` would fit, ms; None if it never can.

        Nothing else is assumed to arrive meanwhile. Within the current window
        the count falls as the previous window slides out; past its end the
        current window becomes the previous one.
        """
        if amount > limit:
            return None
        if self.fits(previous, current, amount, limit):
            return 0
        if current + amount <= limit:
            return self._first_fit(previous, current, amount, limit) - self.elapsed_ms
        following = SlidingWindow(self.width_ms, self.index + 1, 0)
        fit = following._first_fit(current, 0, amount, limit)
        return self.width_ms - self.elapsed_ms + fit

    def _first_fit(self, previous: int, current: int, amount: int, limit: int) -> int:
        """The first whole ms into this window at which the call fits.

        Solved from the count's formula, then moved forward past any rounding
        of the division (a previous of 0 fits at once, and is never asked).
        """
        width, room = self.width_ms, limit - current - amount
        at = max(0, math.ceil(width - room * width / previous))
        while at < width and self.count(previous, current, at) + amount > limit:
            at += 1
        return at
