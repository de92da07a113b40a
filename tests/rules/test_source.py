"""RuleSource: the active snapshot and the record of refused reloads."""

from __future__ import annotations

from pathlib import Path

from extproc.errors import RuleProblem, RulesError
from extproc.rules.loader import load_rules
from extproc.rules.source import RuleSource

GOOD = Path(__file__).parent / "good"


def test_swap_serves_the_new_set_and_clears_the_last_error(tmp_path: Path) -> None:
    """After a swap, current() and revision are the new set's; the error is gone."""
    source = RuleSource.from_folder(tmp_path)
    source.refuse(RulesError([RuleProblem("a.yaml", 1, "kind", "bad")]))
    good = load_rules(GOOD)

    source.swap(good)

    expected = (good, good.revision, None, 1)
    found = (
        source.current(),
        source.revision,
        source.last_error,
        source.failed_reloads,
    )
    assert expected == found


def test_refusal_keeps_the_set_and_counts() -> None:
    """A refusal leaves current() alone, counts once and keeps the error."""
    source = RuleSource.from_folder(GOOD)
    served = source.current()
    error = RulesError([RuleProblem("a.yaml", 1, "kind", "bad")])

    source.refuse(error)
    source.refuse(error)

    expected = (served, 2, error)
    assert expected == (source.current(), source.failed_reloads, source.last_error)
