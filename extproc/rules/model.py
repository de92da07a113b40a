"""The validated, immutable rule set that every request reads once.

Objects here are built only by the loader, after validation; nothing in them is
checked again on the hot path.
"""

from __future__ import annotations

import enum
import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field

from extproc.windows import Cycle

_WEEKDAY_ABBREVIATIONS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class LimitType(enum.StrEnum):
    TOKEN = "token"


class FailurePolicy(enum.StrEnum):
    """What a rule does when Redis cannot be reached."""

    CLOSED = "closed"  # refuse the call with 503
    OPEN = "open"  # admit the call uncounted, and say so in the event


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
        if not self.models:
            return True
        return any(fnmatch.fnmatchcase(model, pattern) for pattern in self.models)


@dataclass(frozen=True, slots=True)
class RuleSet:
    """One validated revision of rules/: looked up by key hash and consumer name."""

    revision: str
    consumers: Mapping[str, Consumer]
    rules: Mapping[str, QuotaRule]
    consumer_by_key: Mapping[str, Consumer]
    rules_by_consumer: Mapping[str, tuple[QuotaRule, ...]]

    def consumer_for_key_hash(self, sha256_hex: str) -> Consumer | None:
        return self.consumer_by_key.get(sha256_hex)

    def rules_for(self, consumer: str, model: str) -> tuple[QuotaRule, ...]:
        """The rules binding `consumer` that apply to `model`, in name order."""
        bound = self.rules_by_consumer.get(consumer, ())
        return tuple(rule for rule in bound if rule.applies_to(model))

    @classmethod
    def build(
        cls,
        revision: str,
        consumers: Mapping[str, Consumer],
        rules: Mapping[str, QuotaRule],
        bindings: Mapping[str, tuple[str, ...]],
    ) -> RuleSet:
        """Index validated parts; `bindings` maps a rule name to consumer names."""
        by_key = {key.sha256: c for c in consumers.values() for key in c.keys}
        by_consumer: dict[str, list[QuotaRule]] = {name: [] for name in consumers}
        for rule_name in sorted(bindings):
            for consumer_name in bindings[rule_name]:
                by_consumer[consumer_name].append(rules[rule_name])
        return cls(
            revision=revision,
            consumers=dict(consumers),
            rules=dict(rules),
            consumer_by_key=by_key,
            rules_by_consumer={k: tuple(v) for k, v in by_consumer.items()},
        )
