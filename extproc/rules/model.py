"""The validated, immutable rule set that every request reads once.

Objects here are built only by the loader, after validation; nothing in them is
checked again on the hot path.
"""

from __future__ import annotations

import enum
import fnmatch
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from extproc.windows import Cycle


class LimitType(enum.StrEnum):
    TOKEN = "token"


class FailurePolicy(enum.StrEnum):
    """What a rule does when Redis cannot be reached."""

    CLOSED = "closed"  # refuse the call with 503
    OPEN = "open"  # admit the call uncounted, and say so in the event


class Mode(enum.StrEnum):
    """Whether a rule refuses calls, or only counts them and reports would-refuse."""

    ENFORCE = "enforce"
    SHADOW = "shadow"


class RateMeasure(enum.StrEnum):
    """What a rate limit counts."""

    TOKENS = "tokens"  # tokens per unit of time, reserved and settled like quotas
    REQUESTS = "requests"  # calls admitted per unit of time
    CONCURRENT = "concurrent"  # calls in flight at once; no unit


class RateUnit(enum.StrEnum):
    SECOND = "second"
    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"

    @property
    def seconds(self) -> int:
        return _UNIT_SECONDS[self]


_UNIT_SECONDS = {
    RateUnit.SECOND: 1,
    RateUnit.MINUTE: 60,
    RateUnit.HOUR: 3600,
    RateUnit.DAY: 86_400,
}


class TokenCount(enum.StrEnum):
    """Which of a call's tokens a tokens limit counts."""

    TOTAL = "total"
    INPUT = "input"
    OUTPUT = "output"


def key_hash(key: str) -> str:
    """The SHA-256 hex digest under which an API key is known: of its UTF-8 bytes."""
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A consumer's credential, known only by the SHA-256 hex digest of the key."""

    sha256: str
    name: str = ""


@dataclass(frozen=True, slots=True)
class Consumer:
    name: str
    keys: tuple[ApiKey, ...]
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class QuotaRule:
    """A quota card: `quota` units per natural `cycle` in `zone`, per consumer."""

    name: str
    limit_type: LimitType
    quota: int
    cycle: Cycle
    zone: str = "Asia/Shanghai"
    week_start: int = 0  # 0 = Monday, as ISO 8601
    models: tuple[str, ...] = ()  # shell-style patterns; empty means every model
    failure_policy: FailurePolicy = FailurePolicy.CLOSED
    mode: Mode = Mode.ENFORCE

    def applies_to(self, model: str) -> bool:
        return _matches(self.models, model)


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most `amount` of `measure` per sliding `unit` (in flight, if concurrent)."""

    name: str
    measure: RateMeasure
    amount: int
    unit: RateUnit | None = None  # None exactly when measure is CONCURRENT
    models: tuple[str, ...] = ()  # shell-style patterns; empty means every model
    tokens: TokenCount = TokenCount.TOTAL  # read only when measure is TOKENS
    mode: Mode = Mode.ENFORCE
    failure_policy: FailurePolicy = FailurePolicy.CLOSED

    @property
    def width_ms(self) -> int:
        """The window's length in ms (0 for a concurrency limit, which has none)."""
        return self.unit.seconds * 1000 if self.unit is not None else 0

    def applies_to(self, model: str) -> bool:
        return _matches(self.models, model)


def _matches(patterns: tuple[str, ...], model: str) -> bool:
    if not patterns:
        return True
    return any(fnmatch.fnmatchcase(model, pattern) for pattern in patterns)


@dataclass(frozen=True, slots=True)
class RuleSet:
    """One validated revision of rules/: looked up by key hash and consumer name."""

    revision: str
    consumers: Mapping[str, Consumer]
    rules: Mapping[str, QuotaRule]
    consumer_by_key: Mapping[str, Consumer]
    rules_by_consumer: Mapping[str, tuple[QuotaRule, ...]]
    rate_limits: Mapping[str, RateLimit] = field(default_factory=dict)
    rate_limits_by_consumer: Mapping[str, tuple[RateLimit, ...]] = field(
        default_factory=dict
    )

    def consumer_for_key_hash(self, sha256_hex: str) -> Consumer | None:
        return self.consumer_by_key.get(sha256_hex)

    def rules_for(self, consumer: str, model: str) -> tuple[QuotaRule, ...]:
        """The rules binding `consumer` that apply to `model`, in name order."""
        bound = self.rules_by_consumer.get(consumer, ())
        return tuple(rule for rule in bound if rule.applies_to(model))

    def rate_limits_for(self, consumer: str, model: str) -> tuple[RateLimit, ...]:
        """The rate limits binding `consumer` that apply to `model`, in name order."""
        bound = self.rate_limits_by_consumer.get(consumer, ())
        return tuple(limit for limit in bound if limit.applies_to(model))

    @classmethod
    def build(
        cls,
        revision: str,
        consumers: Mapping[str, Consumer],
        rules: Mapping[str, QuotaRule],
        bindings: Mapping[str, tuple[str, ...]],
        rate_limits: Mapping[str, RateLimit] | None = None,
        rate_bindings: Mapping[str, tuple[str, ...]] | None = None,
    ) -> RuleSet:
        """Index validated parts; `bindings` maps a rule name to consumer names,
        `rate_bindings` a rate limit's name to consumer names."""
        by_key = {key.sha256: c for c in consumers.values() for key in c.keys}
        rate_limits = rate_limits or {}
        return cls(
            revision=revision,
            consumers=dict(consumers),
            rules=dict(rules),
            consumer_by_key=by_key,
            rules_by_consumer=_by_consumer(consumers, rules, bindings),
            rate_limits=dict(rate_limits),
            rate_limits_by_consumer=_by_consumer(
                consumers, rate_limits, rate_bindings or {}
            ),
        )


Bound = TypeVar("Bound", QuotaRule, RateLimit)


def _by_consumer(
    consumers: Mapping[str, Consumer],
    named: Mapping[str, Bound],
    bindings: Mapping[str, tuple[str, ...]],
) -> dict[str, tuple[Bound, ...]]:
    """Each consumer's bound rules (or limits), in name order."""
    by_consumer: dict[str, list[Bound]] = {name: [] for name in consumers}
    for name in sorted(bindings):
        for consumer_name in bindings[name]:
            by_consumer[consumer_name].append(named[name])
    return {k: tuple(v) for k, v in by_consumer.items()}
