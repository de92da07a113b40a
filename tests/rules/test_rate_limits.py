"""Loading RateLimit documents and `mode`: what the hot path finds in the RuleSet."""

from __future__ import annotations

import re
from pathlib import Path

from extproc.rules.loader import build_rules, load_rules
from extproc.rules.model import (
    Counts,
    FailurePolicy,
    Mode,
    RateLimit,
    RateMeasure,
    RateUnit,
)

DOC = Path(__file__).parents[2] / "docs" / "rate-limits.md"
CONSUMERS = b"""
apiVersion: extproc/v1
kind: Consumer
metadata: {name: alice, labels: {team: platform, tier: batch}}
spec:
  keys:
    - sha256: "2e15b40525c460e282cd07f31837a2dbf900fc53ddd43a8f4e84c0d4bb6c50c2"
---
apiVersion: extproc/v1
kind: Consumer
metadata: {name: bob}
spec:
  keys:
    - sha256: "9b94dc1a51a38769f135edf04033ad7f2f487b6c25929be7a861cfc1ab10cf98"
"""


def doc_examples() -> bytes:
    """Every YAML block of the rate-limit guide but the first (a field sketch)."""
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.DOTALL)
    return "---\n".join(blocks[1:]).encode()


def test_documented_examples_load() -> None:
    """The guide's examples are a valid rule set, read as the guide says."""
    rules = build_rules({"consumers.yaml": CONSUMERS, "limits.yaml": doc_examples()})

    expected = {
        "alice-rpm": RateLimit("alice-rpm", RateMeasure.REQUESTS, 60, RateUnit.MINUTE),
        "platform-gpt4o-tpm": RateLimit(
            "platform-gpt4o-tpm",
            RateMeasure.TOKENS,
            100_000,
            RateUnit.MINUTE,
            models=("gpt-4o*",),
        ),
        "batch-concurrency": RateLimit(
            "batch-concurrency", RateMeasure.CONCURRENT, 4, None
        ),
        "output-per-hour-trial": RateLimit(
            "output-per-hour-trial",
            RateMeasure.TOKENS,
            200_000,
            RateUnit.HOUR,
            counts=Counts.OUTPUT,
            mode=Mode.SHADOW,
        ),
    }
    assert expected == dict(rules.rate_limits)
    assert Mode.SHADOW == rules.rules["everyone-daily-trial"].mode


def test_rate_limits_bind_consumers_by_name_and_selector() -> None:
    """Each consumer gets the limits that name or select it, in name order."""
    rules = build_rules({"consumers.yaml": CONSUMERS, "limits.yaml": doc_examples()})

    alice = [limit.name for limit in rules.rate_limits_for("alice", "gpt-4o-mini")]
    bob = [limit.name for limit in rules.rate_limits_for("bob", "gpt-4o-mini")]
    bob_other = [limit.name for limit in rules.rate_limits_for("bob", "claude")]
    assert [
        "alice-rpm",
        "batch-concurrency",
        "output-per-hour-trial",
        "platform-gpt4o-tpm",
    ] == alice
    assert ["output-per-hour-trial"] == bob
    assert ["output-per-hour-trial"] == bob_other


def test_rate_limit_optional_fields_take_their_defaults() -> None:
    """A limit without counts, models, mode or failurePolicy gets the defaults."""
    rules = build_rules({"consumers.yaml": CONSUMERS, "limits.yaml": doc_examples()})

    limit = rules.rate_limits["alice-rpm"]
    assert (Counts.TOTAL, (), Mode.ENFORCE, FailurePolicy.CLOSED) == (
        limit.counts,
        limit.models,
        limit.mode,
        limit.failure_policy,
    )


def test_quota_rules_are_enforced_unless_they_say_shadow() -> None:
    """A QuotaRule without `mode` is enforced."""
    rules = load_rules(Path(__file__).parent / "good")

    assert {Mode.ENFORCE} == {rule.mode for rule in rules.rules.values()}
