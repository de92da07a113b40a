"""The source of "now", passed in so that tests can move time across windows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """The current instant, as an aware UTC datetime."""
    return datetime.now(UTC)
