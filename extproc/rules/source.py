"""The active rule set: one immutable snapshot, swapped whole on reload."""

from __future__ import annotations

from extproc.rules.model import RuleSet


class RuleSource:
    """Holds the snapshot every new ext_proc stream reads once.

    Swapping is a single attribute assignment, atomic for the event loop: a
    stream sees the old rule set or the new one, never a mix.
    """

    def __init__(self, initial: RuleSet) -> None:
        self._current = initial

    def current(self) -> RuleSet:
        return self._current

    def swap(self, rules: RuleSet) -> None:
        self._current = rules
