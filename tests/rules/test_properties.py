"""Properties of the loader over generated input (hypothesis)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from extproc.errors import RulesError
from extproc.rules.loader import build_rules, revision_of

GOOD = Path(__file__).parent / "good"
GOOD_FILES = {path.name: path.read_bytes() for path in GOOD.glob("*.y*ml")}
KEY = "c48a01f49fd0f2cc404bc3cbbc80e91457a3d41bb429a695243de4c61794155c"


def outcome(files: dict[str, bytes]) -> set[str]:
    """Loads `files`; the names of files that problems cite, empty if it loaded."""
    try:
        build_rules(files)
    except RulesError as error:
        assert error.problems, "a refusal names at least one problem"
        return {problem.file for problem in error.problems}
    return set()


@given(st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
def test_arbitrary_bytes_load_or_are_refused(data: bytes) -> None:
    """Any file content loads or is refused with problems; nothing else escapes."""
    cited = outcome({"x.yaml": data})

    assert cited <= {"x.yaml"}


@given(st.data())
def test_damaged_good_files_load_or_are_refused(data: st.DataObject) -> None:
    """A good file with a slice replaced by YAML-ish text loads or is refused."""
    name = data.draw(st.sampled_from(sorted(GOOD_FILES)))
    text = GOOD_FILES[name].decode()
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, min(len(text), start + 40)))
    patch = data.draw(st.text(alphabet=":-[]{}'\"#&*!|>%@ \n\tabcz019.,~", max_size=20))
    files = dict(GOOD_FILES)
    files[name] = (text[:start] + patch + text[end:]).encode()

    cited = outcome(files)

    assert cited <= set(GOOD_FILES)


YAML_11_SURPRISES = st.sampled_from(
    [
        "yes",
        "No",
        "on",
        "OFF",
        "true",
        "null",
        "~",
        "0x1F",
        "017",
        "12:30",
        "1_000",
        "2024-01-01",
        ".inf",
        ".NaN",
        "1e3",
        "+1",
        "-0",
        "3.14",
        "cc-42",
        "y",
        "n",
    ]
)


@given(
    YAML_11_SURPRISES
    | st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,12}", fullmatch=True)
)
def test_bare_label_values_are_kept_or_refused(value: str) -> None:
    """A bare label value is read as exactly its text or refused, never converted."""
    doc = (
        "apiVersion: extproc/v1\nkind: Consumer\n"
        f"metadata:\n  name: demo\n  labels:\n    tier: {value}\n"
        f'spec:\n  keys:\n    - sha256: "{KEY}"\n'
    )
    try:
        labels = build_rules({"c.yaml": doc.encode()}).consumers["demo"].labels
    except RulesError:
        return

    expected = {"tier": value}
    assert expected == labels


LABELS = st.dictionaries(st.sampled_from("abc"), st.sampled_from("xy"), max_size=3)


@given(st.lists(LABELS, min_size=1, max_size=8), LABELS)
def test_selector_binds_consumers_carrying_all_its_labels(
    consumer_labels: list[dict[str, str]], selector: dict[str, str]
) -> None:
    """A selector binds exactly the consumers whose labels include all its pairs."""
    docs = [
        {
            "apiVersion": "extproc/v1",
            "kind": "Consumer",
            "metadata": {"name": f"c{index}", "labels": labels},
            "spec": {"keys": [{"sha256": f"{index:064x}"}]},
        }
        for index, labels in enumerate(consumer_labels)
    ]
    docs.append(
        {
            "apiVersion": "extproc/v1",
            "kind": "QuotaRule",
            "metadata": {"name": "r"},
            "spec": {
                "limitType": "token",
                "quota": 10,
                "cycle": "day",
                "consumers": {"selector": selector},
            },
        }
    )
    text = "\n---\n".join(json.dumps(doc) for doc in docs)
    expected = sorted(
        f"c{index}"
        for index, labels in enumerate(consumer_labels)
        if selector.items() <= labels.items()
    )

    try:
        rule_set = build_rules({"all.yaml": text.encode()})
    except RulesError as error:
        problems = [problem.message for problem in error.problems]
        assert ([], [_binds_nobody(selector)]) == (expected, problems)
        return
    bound = sorted(name for name, rules in rule_set.rules_by_consumer.items() if rules)
    assert expected == bound


def _binds_nobody(selector: dict[str, str]) -> str:
    pairs = ", ".join(f"{key}={value}" for key, value in sorted(selector.items()))
    return f"rule binds no consumer: no consumer has the labels {pairs}"


@given(st.dictionaries(st.from_regex(r"[a-z]{1,8}\.yaml", fullmatch=True), st.binary()))
def test_revision_ignores_listing_order(files: dict[str, bytes]) -> None:
    """The revision depends on names and bytes, not the order files are listed."""
    reversed_files = dict(reversed(list(files.items())))

    assert revision_of(files) == revision_of(reversed_files)


@pytest.mark.parametrize("name", sorted(GOOD_FILES))
def test_revision_changes_with_one_byte(name: str) -> None:
    """Changing one byte of one file gives another revision."""
    changed = dict(GOOD_FILES)
    changed[name] = changed[name][:-1] + b" "

    assert revision_of(GOOD_FILES) != revision_of(changed)
