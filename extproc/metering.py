"""How each rule measures a call: in tokens, in requests or in money.

Admission reserves `Meter.estimate` on every rule of the call and settlement
charges `Meter.actual`, each in the rule's own unit. A cost rule's price is
chosen once, at admission, so the estimate and the charge use the same one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from extproc.apis import LlmRequest, Usage
from extproc.cost import cost_micros, estimate_micros
from extproc.rules.model import (
    Counts,
    LimitType,
    Price,
    PriceTable,
    QuotaRule,
    UnknownPrice,
)


@dataclass(frozen=True, slots=True)
class Meter:
    """One rule's measure of one call; `price` is set for priced cost rules."""

    rule: QuotaRule
    price: Price | None = None

    def estimate(self, request: LlmRequest) -> int:
        """What admission reserves, in the rule's unit."""
        kind = self.rule.limit_type
        if kind is LimitType.REQUESTS:
            return 1
        if kind is LimitType.COST:
            if self.price is None:
                return 0  # tokensOnly: this rule does not count the call
            return estimate_micros(
                request.prompt_tokens, request.output_allowance, self.price
            )
        return self._tokens(
            request.estimated_tokens, request.prompt_tokens, request.output_allowance
        )

    def actual(self, usage: Usage, status: int) -> int:
        """What settlement charges: failed calls charge nothing, in any unit."""
        if not 200 <= status < 300:
            return 0
        kind = self.rule.limit_type
        if kind is LimitType.REQUESTS:
            return 1
        if kind is LimitType.COST:
            return 0 if self.price is None else cost_micros(usage, self.price)
        return self._tokens(usage.total_tokens, usage.input_tokens, usage.output_tokens)

    def _tokens(self, total: int, input_tokens: int, output_tokens: int) -> int:
        """The count a token rule takes, by its `counts`."""
        return counted(self.rule.counts, total, input_tokens, output_tokens)


def counted(counts: Counts, total: int, input_tokens: int, output_tokens: int) -> int:
    """The tokens that a rule or rate limit counting `counts` takes."""
    if counts is Counts.INPUT:
        return input_tokens
    if counts is Counts.OUTPUT:
        return output_tokens
    return total


@dataclass(frozen=True, slots=True)
class Unpriced:
    """A cost rule met a model it has no price for; what its policy did."""

    rule: QuotaRule
    model: str
    default_price: str  # the Pricing used instead, for UnknownPrice.DEFAULT


@dataclass(frozen=True, slots=True)
class Plan:
    """The meters of a call's rules, and the unknown prices met on the way."""

    meters: tuple[Meter, ...]
    unpriced: tuple[Unpriced, ...] = ()
    refused_by: QuotaRule | None = None  # a rule whose policy refuses unpriced

    def price(self) -> Price | None:
        """The price the call's cost is reported in: its first cost rule's."""
        return next((m.price for m in self.meters if m.price is not None), None)


def plan(
    rules: Sequence[QuotaRule], model: str, pricing: PriceTable, at: datetime
) -> Plan:
    """Meter every rule of a call to `model` at instant `at`."""
    meters: list[Meter] = []
    unpriced: list[Unpriced] = []
    refused_by: QuotaRule | None = None
    for rule in rules:
        if rule.limit_type is not LimitType.COST:
            meters.append(Meter(rule))
            continue
        price = pricing.find(model, at, rule.currency)
        if price is None:
            price = _fallback(rule, pricing)
            unpriced.append(Unpriced(rule, model, price.name if price else ""))
            if rule.unknown_price is UnknownPrice.REFUSE:
                refused_by = refused_by or rule
        meters.append(Meter(rule, price))
    return Plan(tuple(meters), tuple(unpriced), refused_by)


def _fallback(rule: QuotaRule, pricing: PriceTable) -> Price | None:
    if rule.unknown_price is not UnknownPrice.DEFAULT:
        return None
    return pricing.by_name.get(rule.default_price)
