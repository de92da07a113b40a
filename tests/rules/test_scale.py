"""A large rule set loads, and the hot path finds things by dictionary lookup."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from extproc.rules.loader import load_rules
from extproc.rules.model import RuleSet

CONSUMERS = 10_000
RULES = 1_000
TEAMS = 100


def consumer_doc(index: int) -> str:
    digest = hashlib.sha256(f"key-{index}".encode()).hexdigest()
    return (
        "apiVersion: extproc/v1\nkind: Consumer\n"
        f"metadata: {{name: c{index}, labels: {{team: t{index % TEAMS}}}}}\n"
        f'spec: {{keys: [{{sha256: "{digest}", name: main}}]}}\n'
    )


def rule_doc(index: int) -> str:
    # Half the rules bind a team by selector, half name ten consumers each.
    if index % 2:
        binding = f"selector: {{team: t{index % TEAMS}}}"
    else:
        named = ", ".join(f"c{(index * 10 + n) % CONSUMERS}" for n in range(10))
        binding = f"names: [{named}]"
    return (
        "apiVersion: extproc/v1\nkind: QuotaRule\n"
        f"metadata: {{name: r{index}}}\n"
        f"spec: {{limitType: token, quota: {1000 + index}, cycle: day, "
        f'models: ["m{index % 7}*"], consumers: {{{binding}}}}}\n'
    )


def write_large_set(folder: Path) -> None:
    for part in range(10):
        span = range(part * CONSUMERS // 10, (part + 1) * CONSUMERS // 10)
        docs = "---\n".join(consumer_doc(index) for index in span)
        (folder / f"consumers-{part}.yaml").write_text(docs)
    docs = "---\n".join(rule_doc(index) for index in range(RULES))
    (folder / "rules.yaml").write_text(docs)


@pytest.fixture(scope="module")
def rule_set(tmp_path_factory: pytest.TempPathFactory) -> RuleSet:
    folder = tmp_path_factory.mktemp("large")
    write_large_set(folder)
    return load_rules(folder)


def test_ten_thousand_consumers_and_a_thousand_rules_load(rule_set: RuleSet) -> None:
    """10,000 consumers and 1,000 rules load with every binding resolved."""

    bound_to_c7 = sorted(rule.name for rule in rule_set.rules_by_consumer["c7"])
    # c7 is in team t7, chosen by the odd rules r7, r107, ..., r907, and is
    # named by r0 alone, the even rule that names c0 to c9.
    expected = sorted(["r0", *(f"r{n}" for n in range(7, RULES, 100))])
    assert (CONSUMERS, RULES, expected) == (
        len(rule_set.consumers),
        len(rule_set.rules),
        bound_to_c7,
    )


def test_lookups_are_dictionary_lookups(rule_set: RuleSet) -> None:
    """The hot path's indexes are plain dicts keyed by key hash and consumer name."""
    digest = hashlib.sha256(b"key-4207").hexdigest()

    found = rule_set.consumer_for_key_hash(digest)
    rules = rule_set.rules_for("c4207", "m0-large")

    # c4207 is named by r420 and in team t7; of the rules, those whose index
    # is a multiple of 7 carry the model pattern m0*.
    expected = (dict, dict, "c4207", ["r420", "r7", "r707"])
    assert expected == (
        type(rule_set.consumer_by_key),
        type(rule_set.rules_by_consumer),
        getattr(found, "name", None),
        [rule.name for rule in rules],
    )
