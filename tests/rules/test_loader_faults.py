"""The loader's refusals: one fixture per fault, each with its exact messages."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from extproc.errors import RulesError
from extproc.rules.loader import load_rules

FIXTURES = Path(__file__).parent / "fixtures"
GOOD = Path(__file__).parent / "good"

FAULTS = {
    "bad_currency": [
        (
            "bad_currency.yaml:15: expected a three-letter currency code like "
            "USD, got 'dollars' at spec.currency"
        ),
        (
            "bad_currency.yaml:16: expected a date as YYYY-MM-DD, got timestamp "
            "'2025-02-30' at spec.effectiveFrom"
        ),
    ],
    "bad_price": [
        (
            "bad_price.yaml:17: expected a decimal amount like 2.50, got number "
            "'2.5e-1' at spec.perMillionTokens.input"
        ),
        (
            "bad_price.yaml:18: expected a decimal amount like 2.50, got integer "
            "'-10' at spec.perMillionTokens.output"
        ),
    ],
    "bad_threshold": [
        (
            "bad_threshold.yaml:16: thresholds are distinct percentages 1 to 100, "
            "got 120 at spec.thresholds[1]"
        ),
    ],
    "cost_quota_too_precise": [
        (
            "cost_quota_too_precise.yaml:16: write at most 6 decimal places, "
            "got 12.3456789 at spec.quota"
        ),
    ],
    "cost_rule_without_currency": [
        (
            "cost_rule_without_currency.yaml:14: a cost rule needs a currency "
            "at spec.currency"
        ),
    ],
    "default_price_without_policy": [
        (
            "default_price_without_policy.yaml:17: defaultPrice is used only "
            "with unknownPrice: default at spec.defaultPrice"
        ),
    ],
    "duplicate_price": [
        (
            "duplicate_price.yaml:22: model pattern 'gpt-4o' is priced in USD "
            "from the same date in duplicate_price.yaml:12 too at metadata.name"
        ),
    ],
    "fields_of_another_limit_type": [
        (
            "fields_of_another_limit_type.yaml:16: counts applies to limitType "
            "token only at spec.counts"
        ),
        (
            "fields_of_another_limit_type.yaml:17: currency applies to limitType "
            "cost only at spec.currency"
        ),
    ],
    "unknown_default_price": [
        (
            "unknown_default_price.yaml:18: unknown Pricing 'fallback' at "
            "spec.defaultPrice"
        ),
    ],
    "bad_api_version": [
        (
            "bad_api_version.yaml:1: unsupported apiVersion 'extproc/v2' "
            "(expected extproc/v1) at apiVersion"
        ),
    ],
    "bad_cycle": [
        (
            "bad_cycle.yaml:16: unknown cycle 'year' (expected day, week or "
            "month) at spec.cycle"
        ),
    ],
    "bad_failure_policy": [
        (
            "bad_failure_policy.yaml:17: unknown failurePolicy 'fail-open' "
            "(expected closed or open) at spec.failurePolicy"
        ),
    ],
    "bad_kind": [
        (
            "bad_kind.yaml:10: unknown kind 'Budget' (expected Consumer, "
            "QuotaRule, Pricing or RateLimit) at kind"
        ),
    ],
    "bad_limit_type": [
        (
            "bad_limit_type.yaml:14: unknown limitType 'dollars' (expected "
            "token, cost or requests) at spec.limitType"
        ),
    ],
    "bad_name": [
        (
            "bad_name.yaml:4: invalid name 'Demo_Team': use lowercase "
            "letters, digits, '-', '_' and '.', starting and ending with a "
            "letter or digit at metadata.name"
        ),
        (
            "bad_name.yaml:12: name longer than 63 characters: "
            "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
            "a' at metadata.name"
        ),
    ],
    "bad_time_zone": [
        ("bad_time_zone.yaml:17: unknown time zone 'Mars/Base' at spec.timeZone"),
    ],
    "bad_week_start": [
        (
            "bad_week_start.yaml:17: unknown weekStart 'mon' (expected "
            "monday, tuesday, wednesday, thursday, friday, saturday or "
            "sunday) at spec.weekStart"
        ),
    ],
    "bad_quota_mode": [
        (
            "bad_quota_mode.yaml:17: unknown mode 'dry-run' (expected "
            "enforce or shadow) at spec.mode"
        ),
    ],
    "bool_as_string": [
        (
            "bool_as_string.yaml:5: expected a string, got boolean 'yes' "
            "(quote it to mean the text) at metadata.labels.billable"
        ),
        (
            "bool_as_string.yaml:9: expected a string, got boolean 'no' "
            "(quote it to mean the text) at spec.keys[0].name"
        ),
        (
            "bool_as_string.yaml:19: expected a string, got boolean 'off' "
            "(quote it to mean the text) at spec.failurePolicy"
        ),
    ],
    "duplicate_consumer_name": [
        (
            "duplicate_consumer_name.yaml:12: duplicate consumer name 'demo' "
            "(first defined in duplicate_consumer_name.yaml:4) at "
            "metadata.name"
        ),
    ],
    "duplicate_rule_name": [
        (
            "duplicate_rule_name.yaml:23: duplicate rule name 'demo-daily' "
            "(first defined in duplicate_rule_name.yaml:12) at metadata.name"
        ),
    ],
    "duplicate_yaml_key": [
        "duplicate_yaml_key.yaml:16: duplicate key 'quota' at spec.quota",
    ],
    "empty_model_pattern": [
        ("empty_model_pattern.yaml:17: empty model pattern at spec.models[1]"),
    ],
    "malformed_hash": [
        (
            "malformed_hash.yaml:7: malformed key hash: expected 64 "
            "lowercase hex digits (the SHA-256 of the key, see `extproc "
            "hash-key`) at spec.keys[0].sha256"
        ),
        (
            "malformed_hash.yaml:8: malformed key hash: expected 64 "
            "lowercase hex digits (the SHA-256 of the key, see `extproc "
            "hash-key`) at spec.keys[1].sha256"
        ),
    ],
    "missing_field": [
        ("missing_field.yaml:7: missing required field at spec.keys[0].sha256"),
        "missing_field.yaml:9: missing required field at spec",
        "missing_field.yaml:19: missing required field at spec.cycle",
        "missing_field.yaml:19: missing required field at spec.quota",
    ],
    "negative_quota": [
        (
            "negative_quota.yaml:15: quota must be a positive integer, got "
            "-5000 at spec.quota"
        ),
    ],
    "no_keys": [
        "no_keys.yaml:6: a consumer needs at least one key at spec.keys",
    ],
    "not_a_mapping": [
        "not_a_mapping.yaml:9: expected a mapping, got a list",
    ],
    "not_utf8": [
        "not_utf8.yaml:5: the file is not UTF-8 text",
    ],
    "octal_quota": [
        (
            "octal_quota.yaml:15: write integers in plain decimal digits, "
            "got '0100' at spec.quota"
        ),
    ],
    "quota_too_large": [
        (
            "quota_too_large.yaml:15: quota above the supported maximum "
            "9007199254740991 at spec.quota"
        ),
    ],
    "rate_limit_bad_measure": [
        (
            "rate_limit_bad_measure.yaml:14: unknown limit 'cost' (expected "
            "tokens, requests or concurrent) at spec.limit"
        ),
    ],
    "rate_limit_bad_mode": [
        (
            "rate_limit_bad_mode.yaml:17: unknown mode 'dry-run' (expected "
            "enforce or shadow) at spec.mode"
        ),
    ],
    "rate_limit_bad_counts": [
        (
            "rate_limit_bad_counts.yaml:17: unknown counts 'cached' "
            "(expected total, input or output) at spec.counts"
        ),
    ],
    "rate_limit_bad_unit": [
        (
            "rate_limit_bad_unit.yaml:16: unknown unit 'week' (expected "
            "second, minute, hour or day) at spec.unit"
        ),
    ],
    "rate_limit_binds_nobody": [
        (
            "rate_limit_binds_nobody.yaml:18: rule binds no consumer: no "
            "consumer has the labels team=nobody at spec.consumers"
        ),
    ],
    "rate_limit_concurrent_unit": [
        (
            "rate_limit_concurrent_unit.yaml:16: a concurrent limit has no "
            "unit at spec.unit"
        ),
    ],
    "rate_limit_missing_unit": [
        ("rate_limit_missing_unit.yaml:14: missing required field at spec.unit"),
    ],
    "rate_limit_shares_rule_name": [
        (
            "rate_limit_shares_rule_name.yaml:23: duplicate rule name "
            "'demo-rpm' (first defined in "
            "rate_limit_shares_rule_name.yaml:12) at metadata.name"
        ),
    ],
    "rate_limit_counts_of_requests": [
        (
            "rate_limit_counts_of_requests.yaml:17: only a tokens limit "
            "counts tokens, not a requests limit at spec.counts"
        ),
    ],
    "rate_limit_unknown_consumer": [
        (
            "rate_limit_unknown_consumer.yaml:17: unknown consumer 'ghost' "
            "at spec.consumers.names[1]"
        ),
    ],
    "rate_limit_unknown_key": [
        ("rate_limit_unknown_key.yaml:17: unknown key 'window' at spec.window"),
    ],
    "rate_limit_zero_amount": [
        (
            "rate_limit_zero_amount.yaml:15: amount must be a positive "
            "integer, got 0 at spec.amount"
        ),
    ],
    "repeated_key_hash": [
        (
            "repeated_key_hash.yaml:9: key hash listed twice (first in "
            "repeated_key_hash.yaml:7) at spec.keys[1].sha256"
        ),
    ],
    "rule_binds_nobody": [
        (
            "rule_binds_nobody.yaml:17: rule binds no consumer: list names "
            "or give a selector at spec.consumers"
        ),
        (
            "rule_binds_nobody.yaml:28: rule binds no consumer: no consumer "
            "has the labels team=ml at spec.consumers"
        ),
    ],
    "shared_key_hash": [
        (
            "shared_key_hash.yaml:15: key hash already bound to consumer "
            "'demo' (in shared_key_hash.yaml:7) at spec.keys[0].sha256"
        ),
    ],
    "unknown_consumer": [
        (
            "unknown_consumer.yaml:18: unknown consumer 'ghost' at "
            "spec.consumers.names[1]"
        ),
    ],
    "unknown_key": [
        ("unknown_key.yaml:5: unknown key 'annotations' at metadata.annotations"),
        "unknown_key.yaml:9: unknown key 'label' at spec.keys[0].label",
        "unknown_key.yaml:10: unknown key 'status' at status",
        "unknown_key.yaml:20: unknown key 'timezone' at spec.timezone",
        (
            "unknown_key.yaml:23: unknown key 'matchLabels' at "
            "spec.consumers.matchLabels"
        ),
    ],
    "wrong_type": [
        ("wrong_type.yaml:5: expected a mapping, got a list at metadata.labels"),
        "wrong_type.yaml:8: expected a list, got a mapping at spec.keys",
        ("wrong_type.yaml:16: expected an integer, got string '100000' at spec.quota"),
        ("wrong_type.yaml:18: expected a list, got string 'gpt-4o' at spec.models"),
        (
            "wrong_type.yaml:19: expected a string, got integer '8' (quote "
            "it to mean the text) at spec.timeZone"
        ),
    ],
    "yaml_syntax": [
        ("yaml_syntax.yaml:18: YAML syntax error: did not find expected ',' or '}'"),
    ],
    "zero_quota": [
        ("zero_quota.yaml:15: quota must be a positive integer, got 0 at spec.quota"),
    ],
}


def refusal(folder: Path) -> list[str]:
    """The rendered problems of loading `folder`, which must be refused."""
    with pytest.raises(RulesError) as caught:
        load_rules(folder)
    return [str(problem) for problem in caught.value.problems]


def folder_with(tmp_path: Path, *files: Path) -> Path:
    for file in files:
        shutil.copy(file, tmp_path / file.name)
    return tmp_path


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_fault_fixture_is_refused_with_exact_messages(
    fault: str, tmp_path: Path
) -> None:
    """A folder holding one faulty file is refused, naming each fault exactly."""
    folder = folder_with(tmp_path, FIXTURES / f"{fault}.yaml")

    assert FAULTS[fault] == refusal(folder)


def test_every_fixture_is_checked() -> None:
    """Each fixture file has its expected messages here, so none goes untested."""
    fixtures = {path.stem for path in FIXTURES.glob("*.yaml")}

    assert set(FAULTS) | {"duplicate_names_across_files"} == fixtures


def test_duplicate_names_across_files(tmp_path: Path) -> None:
    """Names repeated in another file are refused; the first file in order wins."""
    good = [path for path in GOOD.iterdir() if path.suffix in (".yaml", ".yml")]
    fixture = FIXTURES / "duplicate_names_across_files.yaml"
    folder = folder_with(tmp_path, fixture, *good)

    expected = [
        "duplicate_names_across_files.yaml:5: duplicate consumer name 'alice' "
        "(first defined in consumers.yaml:5) at metadata.name",
        "quotas.yml:4: duplicate rule name 'platform-daily' (first defined in "
        "duplicate_names_across_files.yaml:13) at metadata.name",
    ]
    assert expected == refusal(folder)


def test_problems_of_all_files_are_reported_together(tmp_path: Path) -> None:
    """Faults in several files come out in one refusal, in file and line order."""
    folder = folder_with(
        tmp_path, FIXTURES / "not_utf8.yaml", FIXTURES / "bad_cycle.yaml"
    )

    assert FAULTS["bad_cycle"] + FAULTS["not_utf8"] == refusal(folder)


def test_unparsable_file_hides_no_consumer_behind_unknown_names(
    tmp_path: Path,
) -> None:
    """A rule naming a consumer of a file that does not parse is not misreported."""
    (tmp_path / "a.yaml").write_text("kind: Consumer\nmetadata: {name: [x\n")
    shutil.copy(FIXTURES / "unknown_consumer.yaml", tmp_path / "b.yaml")

    expected = ["a.yaml:3: YAML syntax error: did not find expected ',' or ']'"]
    assert expected == refusal(tmp_path)


def test_malformed_hash_does_not_echo_the_value(tmp_path: Path) -> None:
    """What was written in place of a hash, often a raw key, stays out of errors."""
    folder = folder_with(tmp_path, FIXTURES / "malformed_hash.yaml")

    assert not [line for line in refusal(folder) if "sk-proj" in line]


def test_missing_folder_is_refused(tmp_path: Path) -> None:
    """A folder that does not exist is a refusal, not an empty rule set."""
    folder = tmp_path / "absent"

    expected = [f"{folder}: cannot read the rules folder: No such file or directory"]
    assert expected == refusal(folder)
