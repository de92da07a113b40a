"""Pricing documents and the new limit types, loaded from a priced rules folder."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from extproc.rules.loader import load_rules
from extproc.rules.model import Counts, LimitType, UnknownPrice, specificity

PRICED = Path(__file__).parent / "priced"
BEFORE_2026 = datetime(2025, 6, 1, tzinfo=UTC)


def test_prices_are_read_as_exact_decimals() -> None:
    """Prices keep their written digits, and unwritten ones take the defaults."""
    price = load_rules(PRICED).pricing.by_name["gpt-4o"]

    expected = (
        "USD",
        Decimal("2.50"),
        Decimal("10.00"),
        Decimal("1.25"),
        Decimal("2.50"),
        Decimal("10.00"),
        None,
    )
    assert expected == (
        price.currency,
        price.input,
        price.output,
        price.cached_input,
        price.cache_write,
        price.reasoning,
        price.effective_from,
    )


def test_cost_rule_is_stored_in_micro_units() -> None:
    """A cost quota of 25.50 is 25,500,000 micro-units, with its policy fields."""
    rule = load_rules(PRICED).rules["demo-budget"]

    expected = (LimitType.COST, 25_500_000, "USD", UnknownPrice.DEFAULT, "fallback")
    assert expected == (
        rule.limit_type,
        rule.quota,
        rule.currency,
        rule.unknown_price,
        rule.default_price,
    )
    assert (80, 100) == rule.thresholds


def test_requests_and_counts_fields() -> None:
    """A requests rule and a token rule counting output load with their fields."""
    rules = load_rules(PRICED).rules

    assert (LimitType.REQUESTS, 1000) == (
        rules["demo-calls"].limit_type,
        rules["demo-calls"].quota,
    )
    assert Counts.OUTPUT == rules["demo-output"].counts
    assert Counts.TOTAL == rules["demo-calls"].counts


@pytest.mark.parametrize(
    ("model", "at", "currency", "expected"),
    [
        ("gpt-4o-mini", BEFORE_2026, "", "gpt-4o-mini-exact"),
        ("gpt-4o-mini-2024-07-18", BEFORE_2026, "", "gpt-4o-mini"),
        ("gpt-4o", BEFORE_2026, "USD", "gpt-4o"),
        ("gpt-4o", datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC), "USD", "gpt-4o"),
        ("gpt-4o", datetime(2026, 1, 1, tzinfo=UTC), "USD", "gpt-4o-2026"),
        ("gpt-4o", BEFORE_2026, "EUR", "gpt-4o-euro"),
        ("gpt-4o-mini", BEFORE_2026, "EUR", "gpt-4o-euro"),
        ("claude-sonnet-4", BEFORE_2026, "", None),
    ],
)
def test_price_precedence(
    model: str, at: datetime, currency: str, expected: str | None
) -> None:
    """The most specific pattern wins, then the latest date already reached."""
    found = load_rules(PRICED).pricing.find(model, at, currency)

    assert expected == (found.name if found else None)


def test_a_price_without_models_matches_no_model() -> None:
    """A Pricing that names no model serves only as a rule's default price."""
    table = load_rules(PRICED).pricing

    assert "fallback" not in {price.name for _, price in table.entries}
    assert "fallback" in table.by_name


def test_specificity_order() -> None:
    """Exact names beat patterns; among patterns, more literal characters win."""
    patterns = ["*", "gpt-*", "gpt-4o-mini", "gpt-4o*", "gpt-4o-mini*", "gpt-4?"]

    ranked = sorted(patterns, key=specificity, reverse=True)

    assert ["gpt-4o-mini", "gpt-4o-mini*", "gpt-4o*", "gpt-4?", "gpt-*", "*"] == ranked
