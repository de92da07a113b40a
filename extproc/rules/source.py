"""The holder of the active rule set, swapped whole on every accepted reload."""

from __future__ import annotations

from pathlib import Path

from extproc.errors import RulesError
from extproc.rules.loader import load_rules
from extproc.rules.model import RuleSet


class RuleSource:
    """The active RuleSet, with the outcome of the reloads that tried to replace it.

    A request reads `current()` once and keeps that snapshot to its end. A swap
    is one attribute assignment, atomic for readers, so no lock is needed.
    """

    def __init__(self, rules: RuleSet) -> None:
        self._rules = rules
        self.failed_reloads = 0
        self.last_error: RulesError | None = None

    @classmethod
    def from_folder(cls, folder: Path) -> RuleSource:
        """A source serving the rules of `folder`; RulesError if they are invalid."""
        return cls(load_rules(folder))

    def current(self) -> RuleSet:
        return self._rules

    @property
    def revision(self) -> str:
        """The content hash of the rule set being served."""
        return self._rules.revision

    def swap(self, rules: RuleSet) -> None:
        """Serves `rules` from now on; a refusal before it is no longer current."""
        self._rules = rules
        self.last_error = None

    def refuse(self, error: RulesError) -> None:
        """Counts a refused reload; the rule set being served stays as it is."""
        self.failed_reloads += 1
        self.last_error = error
