"""Events: one usage record per call, threshold alerts and price warnings.

Every event is a CloudEvents 1.0 JSON object (docs/events.md). The stream
entry holds it whole in the `event` field, beside a few flat fields for
readers that filter without parsing; the log line carries the same record.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from typing import TYPE_CHECKING, Any

from extproc.apis.usage import Usage

if TYPE_CHECKING:
    from extproc.metering import Unpriced
    from extproc.store.quota_store import Crossing

SPEC_VERSION = "1.0"
SOURCE = "/extproc"
USAGE_TYPE = "dev.extproc.usage.v1"
THRESHOLD_TYPE = "dev.extproc.quota.threshold.v1"
PRICE_UNKNOWN_TYPE = "dev.extproc.price.unknown.v1"


class Decision(enum.StrEnum):
    ADMITTED = "admitted"  # reserved and, at the end, settled
    REFUSED = "refused"  # a quota had no room: 429
    UNAUTHENTICATED = "unauthenticated"  # no key, or an unknown one: 401
    INVALID = "invalid"  # the request could not be read: 400
    UNAVAILABLE = "unavailable"  # Redis could not be reached: 503
    UNCOUNTED = "uncounted"  # admitted without counting (fail-open rules)
    UNMETERED = "unmetered"  # no rule applies, or the path is not an LLM call


@dataclass(frozen=True, slots=True)
class RuleWindow:
    """One rule's window that a call was charged on, and by how much."""

    rule: str
    window: str  # the window id: its first local date, YYYYMMDD
    limit_type: str  # token, cost or requests: the unit of `charged`
    charged: int  # tokens, micro-units of the rule's currency, or requests

    def __str__(self) -> str:
        return f"{self.rule}/{self.window}"

    def data(self) -> dict[str, str | int]:
        """The window as event data (dataclasses.asdict deep-copies, slowly)."""
        return {
            "rule": self.rule,
            "window": self.window,
            "limit_type": self.limit_type,
            "charged": self.charged,
        }


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
    windows: tuple[RuleWindow, ...] = ()  # every rule charged
    estimate_tokens: int = 0  # what admission reserved
    usage: Usage = field(default_factory=Usage)
    charged_tokens: int = 0
    cost_micros: int | None = None  # None: no price known for the model
    currency: str = ""
    latency_ms: float = 0.0
    rules_revision: str = ""
    reason: str = ""  # why the call was refused or cut, in words
    # Shadow rules and limits that had no room for the call, which they admit.
    shadow_refusals: tuple[str, ...] = ()
    # Envoy's x-request-id, which its access log carries: joins the two.
    request_id: str = ""

    def fields(self) -> dict[str, str | int | float | bool | None]:
        """Flat fields for a log line."""
        # Read attribute by attribute: dataclasses.asdict deep-copies every
        # value, which cost more than the rest of a call's settlement.
        flat = {name: getattr(self, name) for name in _EVENT_FIELDS}
        flat.update((name, getattr(self.usage, name)) for name in _USAGE_FIELDS)
        flat["decision"] = str(self.decision)
        flat["windows"] = ",".join(str(window) for window in self.windows)
        flat["shadow_refusals"] = ",".join(self.shadow_refusals)
        flat["latency_ms"] = round(self.latency_ms, 3)
        return flat

    def data(self) -> dict[str, Any]:
        """The CloudEvent's `data`: the call's record, nested."""
        usage = self.usage
        cost = None
        if self.cost_micros is not None:
            cost = {"micros": self.cost_micros, "currency": self.currency}
        return {
            "decision": str(self.decision),
            "status": self.status,
            "api": self.api,
            "model": self.model,
            "stream": self.stream,
            "tokens": {
                "input": usage.input_tokens,
                "output": usage.output_tokens,
                "total": usage.total_tokens,
                "cached_input": usage.cached_input_tokens,
                "cache_write_input": usage.cache_write_input_tokens,
                "reasoning": usage.reasoning_tokens,
            },
            "estimated": usage.estimated,
            "estimate_tokens": self.estimate_tokens,
            "charged_tokens": self.charged_tokens,
            "cost": cost,
            "windows": [window.data() for window in self.windows],
            "latency_ms": round(self.latency_ms, 3),
            "rules_revision": self.rules_revision,
            "reason": self.reason,
            "shadow_refusals": list(self.shadow_refusals),
            "request_id": self.request_id,
        }

    def stream_entry(self) -> dict[str, str]:
        """The call's CloudEvent as a Redis stream entry."""
        envelope = cloud_event(USAGE_TYPE, self.id, self.time, self.consumer)
        flat = {"decision": str(self.decision), "status": str(self.status)}
        return stream_entry(envelope, self.data(), flat)


_EVENT_FIELDS = tuple(f.name for f in dataclass_fields(UsageEvent) if f.name != "usage")
_USAGE_FIELDS = tuple(f.name for f in dataclass_fields(Usage))


def cloud_event(kind: str, event_id: str, time: str, subject: str) -> dict[str, Any]:
    """A CloudEvents 1.0 envelope (JSON format) without its data."""
    return {
        "specversion": SPEC_VERSION,
        "id": event_id,
        "source": SOURCE,
        "type": kind,
        "time": time,
        "subject": subject,
        "datacontenttype": "application/json",
    }


def stream_entry(
    envelope: dict[str, Any], data: dict[str, Any], flat: dict[str, str] | None = None
) -> dict[str, str]:
    """Stream fields: type and subject flat, the whole event as JSON in `event`."""
    event = json.dumps({**envelope, "data": data}, separators=(",", ":"))
    return {
        "type": envelope["type"],
        "subject": envelope["subject"],
        **(flat or {}),
        "event": event,
    }


def threshold_entry(consumer: str, crossing: Crossing, time: str) -> dict[str, str]:
    """The stream entry of a threshold crossing; its id names the rule, window
    and percent, so a reader can also deduplicate by it."""
    rule = crossing.rule
    event_id = f"{consumer}/{rule.name}/{crossing.window.id}/{crossing.percent}"
    data = {
        "rule": rule.name,
        "window": crossing.window.id,
        "window_start": crossing.window.start.isoformat(),
        "window_end": crossing.window.end.isoformat(),
        "limit_type": str(rule.limit_type),
        "currency": rule.currency,
        "threshold_percent": crossing.percent,
        "used": crossing.used,
        "limit": crossing.limit,
    }
    envelope = cloud_event(THRESHOLD_TYPE, event_id, time, consumer)
    return stream_entry(envelope, data, {"rule": rule.name})


def price_unknown_entry(
    consumer: str, request_id: str, unpriced: Unpriced, time: str
) -> dict[str, str]:
    """The stream entry warning that a cost rule met a model without a price."""
    rule = unpriced.rule
    data = {
        "rule": rule.name,
        "model": unpriced.model,
        "currency": rule.currency,
        "policy": str(rule.unknown_price),
        "default_price": unpriced.default_price,
        "request_id": request_id,
    }
    envelope = cloud_event(
        PRICE_UNKNOWN_TYPE, f"{request_id}/{rule.name}", time, consumer
    )
    return stream_entry(envelope, data, {"rule": rule.name})
