"""The product's own exceptions: foreign ones (redis, grpc, json) are mapped here.

ExtprocError
 ├── RulesError         a rules folder that cannot be loaded; lists every problem
 ├── StoreUnavailable   Redis could not be reached or did not answer in time
 └── BadRequest         a client's request cannot be read as its API
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


class ExtprocError(Exception):
    """Base of every error this package raises on purpose."""


class StoreUnavailable(ExtprocError):
    """Redis could not be reached or did not answer in time."""


class BadRequest(ExtprocError):
    """The client's request cannot be read as the API it was sent to."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


@dataclass(frozen=True, slots=True)
class RuleProblem:
    """One fault in a rules folder, located by file, line and dotted field path.

    `line` is 1-based, or None when the problem concerns a whole file or folder;
    `path` is empty when the problem concerns a whole document.
    """

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        suffix = f" at {self.path}" if self.path else ""
        return f"{where}: {self.message}{suffix}"


class RulesError(ExtprocError):
    """A rules folder was refused as a whole; `problems` names every fault in it."""

    def __init__(self, problems: Iterable[RuleProblem]) -> None:
        self.problems: list[RuleProblem] = list(problems)
        super().__init__(self.render())

    def render(self) -> str:
        """All problems, one per line, in file and line order."""
        return "\n".join(str(problem) for problem in self.problems)
