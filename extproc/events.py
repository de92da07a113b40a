"""One usage event per call: the record that logs, streams and audits share."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field

from extproc.apis.usage import Usage


class Decision(enum.StrEnum):
    ADMITTED = "admitted"  # reserved and, at the end, settled
    REFUSED = "refused"  # a quota had no room: 429
    UNAUTHENTICATED = "unauthenticated"  # no key, or an unknown one: 401
    INVALID = "invalid"  # the request could not be read: 400
    UNAVAILABLE = "unavailable"  # Redis could not be reached: 503
    UNCOUNTED = "uncounted"  # admitted without counting (fail-open rules)
    UNMETERED = "unmetered"  # no rule applies, or the path is not an LLM call


@dataclass(frozen=True, slots=True)
class UsageEvent:
    """What one call did to which quotas; never carries a key or a prompt."""

    id: str
    time: str  # ISO 8601, UTC
    consumer: str
    decision: Decision
    api: str = ""
    model: str = ""
    stream: bool = False
    status: int = 0  # HTTP status the client got (0: the call never finished)
    windows: tuple[str, ...] = ()  # "rule/window-id" for every rule charged
    estimate_tokens: int = 0  # what admission reserved
    usage: Usage = field(default_factory=Usage)
    charged_tokens: int = 0
    latency_ms: float = 0.0
    rules_revision: str = ""
    reason: str = ""  # why the call was refused or cut, in words
    # Shadow rules and limits that had no room for the call, which they admit.
    shadow_refusals: tuple[str, ...] = ()

    def fields(self) -> dict[str, str | int | float | bool]:
        """Flat fields for a log line."""
        flat = asdict(self)
        usage = flat.pop("usage")
        flat.update(usage)
        flat["decision"] = str(self.decision)
        flat["windows"] = ",".join(self.windows)
        flat["shadow_refusals"] = ",".join(self.shadow_refusals)
        flat["latency_ms"] = round(self.latency_ms, 3)
        return flat

    def stream_entry(self) -> dict[str, str]:
        """Fields for the Redis stream, where every value is a string."""
        return {name: _text(value) for name, value in self.fields().items()}


def _text(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
