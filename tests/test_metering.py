"""Each limit type's estimate and charge, and the unknown-price policies."""

from __future__ import annotations

from datetime import UTC, datetime

from extproc.apis import LlmRequest
from extproc.apis.usage import Usage
from extproc.metering import Meter, plan
from extproc.rules.model import Counts, LimitType, PriceTable, UnknownPrice
from tests.harness.rules import price, quota

NOW = datetime(2026, 5, 1, tzinfo=UTC)
REQUEST = LlmRequest("openai.chat", "gpt-4o", False, 100, 50)
USAGE = Usage(input_tokens=80, output_tokens=30, total_tokens=110)
GPT = price("gpt", ("gpt-*",), "2", "8")
FALLBACK = price("fallback", (), "10", "30")
TABLE = PriceTable.build({"gpt": GPT, "fallback": FALLBACK})


def cost_rule(policy: UnknownPrice = UnknownPrice.REFUSE, default: str = ""):
    return quota(
        "budget",
        1_000_000,
        limit_type=LimitType.COST,
        currency="USD",
        unknown_price=policy,
        default_price=default,
    )


def test_token_rules_count_what_they_say() -> None:
    """Token rules reserve and charge total, input or output tokens."""
    found = [
        (
            Meter(quota("t", 1000, counts=counts)).estimate(REQUEST),
            Meter(quota("t", 1000, counts=counts)).actual(USAGE, 200),
        )
        for counts in (Counts.TOTAL, Counts.INPUT, Counts.OUTPUT)
    ]

    assert [(150, 110), (100, 80), (50, 30)] == found


def test_requests_rule_counts_successful_calls() -> None:
    """A requests rule reserves 1 and charges 1 for a 2xx, 0 for a failure."""
    meter = Meter(quota("n", 10, limit_type=LimitType.REQUESTS))

    assert (1, 1, 0, 0) == (
        meter.estimate(REQUEST),
        meter.actual(USAGE, 200),
        meter.actual(Usage(), 500),
        meter.actual(USAGE, 0),
    )


def test_cost_rule_prices_estimate_and_actual() -> None:
    """A cost rule reserves 100x2 + 50x8 and charges 80x2 + 30x8 micro-units."""
    [meter] = plan([cost_rule()], "gpt-4o", TABLE, NOW).meters

    assert (600, 400) == (meter.estimate(REQUEST), meter.actual(USAGE, 200))


def test_unknown_price_policies() -> None:
    """refuse refuses, default prices with the named Pricing, tokensOnly charges 0;
    each one is reported as unpriced."""
    refused = plan([cost_rule()], "llama", TABLE, NOW)
    defaulted = plan([cost_rule(UnknownPrice.DEFAULT, "fallback")], "llama", TABLE, NOW)
    tokens_only = plan([cost_rule(UnknownPrice.TOKENS_ONLY)], "llama", TABLE, NOW)

    assert "budget" == (refused.refused_by.name if refused.refused_by else None)
    assert 2_500 == defaulted.meters[0].estimate(REQUEST)  # 100x10 + 50x30
    assert (0, 0) == (
        tokens_only.meters[0].estimate(REQUEST),
        tokens_only.meters[0].actual(USAGE, 200),
    )
    assert [1, 1, 1] == [len(p.unpriced) for p in (refused, defaulted, tokens_only)]
    assert "fallback" == defaulted.unpriced[0].default_price
