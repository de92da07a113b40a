"""Every Redis key the product uses, built in one place from ordered parts.

All keys of one consumer carry the consumer's name as a hash tag, `{name}`, so
every script (which touches one consumer's keys only) runs on a Redis Cluster.
Consumer and rule names are validated to hold no braces or colons.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class KeySpace:
    """Builds key names under one prefix, so several deployments can share a Redis."""

    prefix: str = "llmq"

    def tag(self, consumer: str) -> str:
        return f"{self.prefix}:{{{consumer}}}"

    def counter(self, consumer: str, rule: str, window_key: str) -> str:
        """Hash of one rule's window: used, reserved, quota/topup edits, holds."""
        return f"{self.tag(consumer)}:q:{rule}:{window_key}"

    def holds(self, consumer: str, rule: str, window_key: str) -> str:
        """Sorted set of the window's reservations, scored by expiry (Unix ms)."""
        return f"{self.counter(consumer, rule, window_key)}:holds"

    def rate_window(self, consumer: str, limit: str, index: int) -> str:
        """Hash of a rate limit's fixed window number `index`: used, reserved,
        holds."""
        return f"{self.tag(consumer)}:r:{limit}:{index}"

    def rate_holds(self, consumer: str, limit: str, index: int) -> str:
        """Sorted set of a rate window's reservations, scored by expiry (Unix ms)."""
        return f"{self.rate_window(consumer, limit, index)}:holds"

    def rate_slots(self, consumer: str, limit: str) -> str:
        """Sorted set of a concurrency limit's calls in flight, scored by expiry
        (Unix ms)."""
        return f"{self.tag(consumer)}:r:{limit}:slots"

    def settled(self, consumer: str, request_id: str) -> str:
        """Marker that makes settlement of one request happen exactly once."""
        return f"{self.tag(consumer)}:settled:{request_id}"

    def usage(self, consumer: str, bucket: str) -> str:
        """Hash of a consumer's usage totals in one 15-minute UTC bucket.

        `bucket` is the bucket's first instant, UTC, as YYYYMMDDHHMM.
        """
        return f"{self.tag(consumer)}:u:{bucket}"

    def audit(self, consumer: str) -> str:
        """Capped list of the consumer's admin edits, newest first (JSON)."""
        return f"{self.tag(consumer)}:audit"

    def audit_stream(self) -> str:
        """The bounded stream of every consumer's admin edits (one key)."""
        return f"{self.prefix}:audit"

    def events(self) -> str:
        """The bounded stream of usage events (one key for the deployment)."""
        return f"{self.prefix}:events"
