"""Rule sets built in code, for tests that are not about the rule files."""

from __future__ import annotations

from decimal import Decimal

from extproc.identity import hash_key
from extproc.rules.model import (
    ApiKey,
    Consumer,
    LimitType,
    Price,
    QuotaRule,
    RuleSet,
)
from extproc.windows import Cycle


def quota(
    name: str,
    amount: int,
    cycle: Cycle = Cycle.DAY,
    zone: str = "Asia/Shanghai",
    limit_type: LimitType = LimitType.TOKEN,
    **extra: object,
) -> QuotaRule:
    return QuotaRule(name, limit_type, amount, cycle, zone, **extra)  # type: ignore[arg-type]


def price(name: str, models: tuple[str, ...], input: str, output: str) -> Price:
    """A USD price per million tokens, cached and reasoning at the plain prices."""
    given, out = Decimal(input), Decimal(output)
    return Price(name, "USD", given, out, given, given, out, models)


def rule_set(
    keys: dict[str, str],
    bindings: dict[QuotaRule, tuple[str, ...]],
    prices: tuple[Price, ...] = (),
) -> RuleSet:
    """`keys` maps a consumer name to its plain API key; `bindings` a rule to names."""
    consumers = {
        name: Consumer(name, (ApiKey(hash_key(key)),)) for name, key in keys.items()
    }
    rules = {rule.name: rule for rule in bindings}
    by_name = {rule.name: names for rule, names in bindings.items()}
    priced = {p.name: p for p in prices}
    return RuleSet.build("test", consumers, rules, by_name, priced)


def daily_rule_yaml(consumer: str, key: str, quota: int, extra: str = "") -> str:
    """Rule files for one consumer and one daily token quota named `daily`;
    `extra` is appended to the rule's spec, indented by the caller."""
    return f"""
apiVersion: extproc/v1
kind: Consumer
metadata: {{name: {consumer}}}
spec:
  keys: [{{sha256: "{hash_key(key)}"}}]
---
apiVersion: extproc/v1
kind: QuotaRule
metadata: {{name: daily}}
spec:
  limitType: token
  quota: {quota}
  cycle: day
  consumers: {{names: [{consumer}]}}{extra}
"""
