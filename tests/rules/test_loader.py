"""Loading good rule sets: what the hot path will find in the RuleSet."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from extproc.errors import RuleProblem, RulesError
from extproc.rules.loader import build_rules, load_rules, read_folder, revision_of
from extproc.rules.model import (
    ApiKey,
    Consumer,
    FailurePolicy,
    LimitType,
    QuotaRule,
)
from extproc.windows import Cycle

GOOD = Path(__file__).parent / "good"
ALICE_LAPTOP = "2e15b40525c460e282cd07f31837a2dbf900fc53ddd43a8f4e84c0d4bb6c50c2"
ALICE_CI = "cf12abd6c179c2396371b50ad6e66e4b9344b31f50908918e9e2642cb42aea0b"
BOB = "9b94dc1a51a38769f135edf04033ad7f2f487b6c25929be7a861cfc1ab10cf98"


def names(rules: tuple[QuotaRule, ...]) -> list[str]:
    return [rule.name for rule in rules]


def test_good_set_consumers() -> None:
    """Consumers come out with their labels and their keys, in written order."""
    rule_set = load_rules(GOOD)

    expected = Consumer(
        name="alice",
        keys=(ApiKey(ALICE_LAPTOP, "laptop"), ApiKey(ALICE_CI, "ci")),
        labels={"team": "platform", "cost-centre": "cc-42"},
    )
    assert expected == rule_set.consumers["alice"]
    everyone = ["alice", "bob", "carol.svc"]
    assert everyone == sorted(rule_set.consumers)


def test_good_set_key_lookup() -> None:
    """Every key hash leads to its consumer; an unknown hash leads nowhere."""
    rule_set = load_rules(GOOD)

    found = {
        digest: getattr(rule_set.consumer_for_key_hash(digest), "name", None)
        for digest in (ALICE_LAPTOP, ALICE_CI, BOB, "0" * 64)
    }
    expected = {ALICE_LAPTOP: "alice", ALICE_CI: "alice", BOB: "bob", "0" * 64: None}
    assert expected == found


def test_good_set_rules_with_defaults() -> None:
    """Fields left out take the documented defaults; `100_000` reads as 100000."""
    rule_set = load_rules(GOOD)

    expected = QuotaRule(
        name="platform-daily",
        limit_type=LimitType.TOKEN,
        quota=100_000,
        cycle=Cycle.DAY,
        zone="Asia/Shanghai",
        week_start=0,
        models=(),
        failure_policy=FailurePolicy.CLOSED,
    )
    assert expected == rule_set.rules["platform-daily"]


def test_good_set_rules_with_every_field() -> None:
    """Every field written in a rule reaches the QuotaRule."""
    rule_set = load_rules(GOOD)

    expected = QuotaRule(
        name="gpt4-weekly",
        limit_type=LimitType.TOKEN,
        quota=2_000_000,
        cycle=Cycle.WEEK,
        zone="Europe/Berlin",
        week_start=6,
        models=("gpt-4o*", "o1-*"),
        failure_policy=FailurePolicy.OPEN,
    )
    assert expected == rule_set.rules["gpt4-weekly"]


def test_good_set_bindings() -> None:
    """Names and selectors bind; an empty selector binds every consumer."""
    rule_set = load_rules(GOOD)

    bound = {
        (consumer, model): names(rule_set.rules_for(consumer, model))
        for consumer in ("alice", "bob", "carol.svc")
        for model in ("gpt-4o-mini", "claude-3-5-sonnet")
    }
    expected = {
        ("alice", "gpt-4o-mini"): ["everyone-monthly", "gpt4-weekly", "platform-daily"],
        ("alice", "claude-3-5-sonnet"): ["everyone-monthly", "platform-daily"],
        ("bob", "gpt-4o-mini"): ["everyone-monthly", "gpt4-weekly"],
        ("bob", "claude-3-5-sonnet"): ["everyone-monthly"],
        ("carol.svc", "gpt-4o-mini"): ["everyone-monthly", "gpt4-weekly"],
        ("carol.svc", "claude-3-5-sonnet"): ["everyone-monthly"],
    }
    assert expected == bound


def test_calendar_names_cycle_week_start_and_zone() -> None:
    """Each rule's calendar changes whenever its windows would be cut otherwise."""
    rule_set = load_rules(GOOD)

    expected = {
        "everyone-monthly": "month@UTC",
        "gpt4-weekly": "week-sun@Europe/Berlin",
        "platform-daily": "day@Asia/Shanghai",
    }
    assert expected == {name: rule.calendar for name, rule in rule_set.rules.items()}


def test_dot_files_and_other_suffixes_are_not_read() -> None:
    """Only *.yaml and *.yml files count; dot-files and notes are skipped."""
    expected = ["consumers.yaml", "quotas.yml"]
    assert expected == sorted(read_folder(GOOD))


def test_empty_folder_is_an_empty_rule_set(tmp_path: Path) -> None:
    """A folder without rules files loads: no consumers, so every key is refused."""
    rule_set = load_rules(tmp_path)

    expected: tuple[object, ...] = ({}, {}, None)
    found = (rule_set.consumers, rule_set.rules, rule_set.consumer_for_key_hash(BOB))
    assert expected == found


def test_revision_is_a_content_hash(tmp_path: Path) -> None:
    """The revision is sha256 over sorted names and bytes: a copy keeps it."""
    for path in GOOD.iterdir():
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / "notes.txt").write_text("not a rules file")

    digest = hashlib.sha256()
    for name in ("consumers.yaml", "quotas.yml"):
        data = (GOOD / name).read_bytes()
        digest.update(f"{len(name)}:{name}:{len(data)}:".encode() + data)
    expected = digest.hexdigest()[:12]
    assert (expected, expected) == (
        load_rules(GOOD).revision,
        load_rules(tmp_path).revision,
    )


def test_revision_changes_with_a_rename() -> None:
    """Moving the same bytes to another file name is another revision."""
    data = (GOOD / "quotas.yml").read_bytes()

    assert revision_of({"a.yaml": data}) != revision_of({"b.yaml": data})


def test_symlinked_files_are_followed(tmp_path: Path) -> None:
    """A file reached through a symlink is read; a dangling symlink is not a file."""
    target = tmp_path / "store"
    target.mkdir()
    shutil.copy(GOOD / "consumers.yaml", target / "consumers.yaml")
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "consumers.yaml").symlink_to(target / "consumers.yaml")
    (rules / "gone.yaml").symlink_to(target / "gone.yaml")

    expected = ["alice", "bob", "carol.svc"]
    assert expected == sorted(load_rules(rules).consumers)


def test_problem_rendering() -> None:
    """A problem reads file:line: message at path, dropping what is unknown."""
    problems = [
        RuleProblem("quotas.yaml", 7, "spec.timeZone", "unknown time zone 'Mars/Base'"),
        RuleProblem("quotas.yaml", 3, "", "YAML syntax error: oops"),
        RuleProblem("rules", None, "", "cannot read the rules folder: denied"),
    ]

    expected = (
        "quotas.yaml:7: unknown time zone 'Mars/Base' at spec.timeZone\n"
        "quotas.yaml:3: YAML syntax error: oops\n"
        "rules: cannot read the rules folder: denied"
    )
    assert expected == str(RulesError(problems))


def test_reference_examples_load() -> None:
    """The full Consumer, QuotaRule and Pricing examples of docs/rules.md load
    together."""
    reference = (Path(__file__).parents[2] / "docs" / "rules.md").read_text()
    blocks = [block.split("```")[0] for block in reference.split("```yaml\n")[1:]]
    full = "apiVersion: extproc/v1\nkind: "
    manifests = [block for block in blocks if block.startswith(full)]
    text = "---\n".join(manifests)

    rule_set = build_rules({"reference.yaml": text.encode()})

    both = ["demo-budget", "demo-daily"]
    expected = (["demo"], both, both, ["fallback", "gpt-4o-2026"])
    assert expected == (
        sorted(rule_set.consumers),
        sorted(rule_set.rules),
        names(rule_set.rules_for("demo", "gpt-4o-mini")),
        sorted(rule_set.pricing.by_name),
    )
