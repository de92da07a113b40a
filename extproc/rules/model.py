"""The validated, immutable rule set that every request reads once.

Objects here are built only by the loader, after validation; nothing in them is
checked again on the hot path.
"""

from __future__ import annotations

import enum
import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import TypeVar

from extproc.windows import Cycle

_WEEKDAY_ABBREVIATIONS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class LimitType(enum.StrEnum):
    """What a rule's quota counts, and so the unit of its counters."""

    TOKEN = "token"  # tokens, of the kind `counts` names
    COST = "cost"  # micro-units of the rule's currency (1e-6)
    REQUESTS = "requests"  # calls that reached the provider and succeeded


class Counts(enum.StrEnum):
    """Which tokens of a call a token rule charges."""

    TOTAL = "total"
    INPUT = "input"
    OUTPUT = "output"


class UnknownPrice(enum.StrEnum):
    """What a cost rule does with a call whose model has no price."""

    REFUSE = "refuse"  # refuse the call (403)
    DEFAULT = "default"  # price it with the rule's `defaultPrice`
    TOKENS_ONLY = "tokensOnly"  # charge this rule nothing; other rules still count


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
    counts: Counts = Counts.TOTAL  # token rules only
    currency: str = ""  # cost rules only: ISO 4217 code of `quota`
    unknown_price: UnknownPrice = UnknownPrice.REFUSE  # cost rules only
    default_price: str = ""  # name of a Pricing document, with UnknownPrice.DEFAULT
    thresholds: tuple[int, ...] = ()  # percent of the limit, ascending
    mode: Mode = Mode.ENFORCE

    @property
    def calendar(self) -> str:
        """How windows are cut: cycle, week start and zone, as `week-sun@UTC`.

        A window id is its first local date, so a daily and a weekly window, or
        windows in two zones, can share one. Counter keys that include this
        name start afresh when a rule's cycle, week start or zone changes.
        """
        cycle = self.cycle.value
        if self.cycle is Cycle.WEEK:
            cycle = f"week-{_WEEKDAY_ABBREVIATIONS[self.week_start]}"
        return f"{cycle}@{self.zone}"

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
    counts: Counts = Counts.TOTAL  # read only when measure is TOKENS
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
class Price:
    """One Pricing document: prices per million tokens, in `currency`.

    `effective_from` is the first UTC date the price applies on; None means it
    always has. Cached and cache-write input, and reasoning output, have their
    own prices (they default to the input and output price when not written).
    """

    name: str
    currency: str
    input: Decimal
    output: Decimal
    cached_input: Decimal
    cache_write: Decimal
    reasoning: Decimal
    models: tuple[str, ...] = ()
    effective_from: date | None = None

    @property
    def starts(self) -> datetime | None:
        """The first instant the price applies: midnight UTC of its date."""
        if self.effective_from is None:
            return None
        return datetime.combine(self.effective_from, time(), UTC)


_WILDCARDS = re.compile(r"\[[^\]]*\]|[*?]")


def specificity(pattern: str) -> tuple[bool, int]:
    """How narrowly a model pattern matches: an exact name beats any pattern,
    then more literal characters beat fewer (`gpt-4o-mini*` beats `gpt-4o*`)."""
    literal = _WILDCARDS.sub("", pattern)
    return literal == pattern, len(literal)


@dataclass(frozen=True, slots=True)
class PriceTable:
    """Every price, ordered so that the first match is the one that applies."""

    entries: tuple[tuple[str, Price], ...] = ()  # (pattern, price), best first
    by_name: Mapping[str, Price] = field(default_factory=dict)

    @classmethod
    def build(cls, prices: Mapping[str, Price]) -> PriceTable:
        """Order by specificity, then later date, then pattern and name text."""
        entries = [(p, price) for price in prices.values() for p in price.models]
        entries.sort(key=lambda entry: entry[0])
        entries.sort(key=lambda entry: _precedence(*entry), reverse=True)
        return cls(tuple(entries), dict(prices))

    def find(self, model: str, at: datetime, currency: str = "") -> Price | None:
        """The price of `model` at instant `at`, in `currency` when one is named."""
        for pattern, price in self.entries:
            starts = price.starts
            if starts is not None and at < starts:
                continue
            if currency and price.currency != currency:
                continue
            if fnmatch.fnmatchcase(model, pattern):
                return price
        return None

    def patterns(self) -> tuple[str, ...]:
        return tuple(pattern for pattern, _ in self.entries)


def _precedence(pattern: str, price: Price) -> tuple[bool, int, date]:
    return (*specificity(pattern), price.effective_from or date.min)


@dataclass(frozen=True, slots=True)
class RuleSet:
    """One validated revision of rules/: looked up by key hash and consumer name."""

    revision: str
    consumers: Mapping[str, Consumer]
    rules: Mapping[str, QuotaRule]
    consumer_by_key: Mapping[str, Consumer]
    rules_by_consumer: Mapping[str, tuple[QuotaRule, ...]]
    pricing: PriceTable = field(default_factory=PriceTable)
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
        prices: Mapping[str, Price] | None = None,
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
            pricing=PriceTable.build(prices or {}),
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
