"""One LLM call's journey through the sidecar: identity, admission, settlement.

A `Call` lives for one ext_proc stream. It reads the rule snapshot once, at the
start, so a reload mid-call never mixes two rule sets. Its methods take the
decoded parts of each ext_proc message and return what to tell Envoy, as plain
values; the processor turns them into protobuf.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from extproc.apis import ApiShape, LlmRequest, Usage, UsageExtractor
from extproc.cost import cost_micros, micros_text
from extproc.events import Decision, RuleWindow, UsageEvent
from extproc.metering import Meter
from extproc.rules.model import (
    Consumer,
    FailurePolicy,
    LimitType,
    Price,
    QuotaRule,
    RuleSet,
)
from extproc.store.quota_store import Admission, Charge, CounterState
from extproc.windows import window_at


@dataclass(slots=True)
class Call:
    rules: RuleSet
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    started: float = field(default_factory=time.monotonic)
    consumer: Consumer | None = None
    path: str = ""  # the request's :path, query string included
    shape: ApiShape | None = None
    request: LlmRequest | None = None
    charges: tuple[Charge, ...] = ()
    meters: tuple[Meter, ...] = ()  # one per charge, in the same order
    price: Price | None = None  # what the call's cost is reported in
    admission: Admission | None = None
    admitted_at: datetime | None = None  # the instant that chose the windows
    decision: Decision = Decision.UNMETERED
    reason: str = ""
    status: int = 0
    extractor: UsageExtractor | None = None
    response_complete: bool = False
    finished: bool = False  # settlement (or event) handed off: never again

    @property
    def reserved(self) -> bool:
        """True while the call holds reservations that settlement must replace."""
        return self.decision is Decision.ADMITTED and bool(self.charges)


def plan_charges(
    meters: Iterable[Meter], request: LlmRequest, now: datetime
) -> tuple[Charge, ...]:
    """Each rule's estimate, in its unit, put on the rule's current window."""
    return tuple(
        Charge(
            meter.rule,
            window_at(now, meter.rule.cycle, meter.rule.zone, meter.rule.week_start),
            meter.estimate(request),
        )
        for meter in meters
    )


def settled_charges(call: Call, usage: Usage) -> tuple[Charge, ...]:
    """Each rule's actual charge, in its unit, replacing the estimate."""
    return tuple(
        Charge(charge.rule, charge.window, meter.actual(usage, call.status))
        for charge, meter in zip(call.charges, call.meters, strict=True)
    )


def call_cost(call: Call, usage: Usage) -> int | None:
    """The call's cost in micro-units of `call.price`; None when unpriced."""
    if call.price is None:
        return None
    return cost_micros(usage, call.price)


def all_fail_open(rules: tuple[QuotaRule, ...]) -> bool:
    return all(rule.failure_policy is FailurePolicy.OPEN for rule in rules)


def final_usage(call: Call) -> Usage:
    """What the call is charged: the provider's report, or a marked estimate."""
    if call.status == 0 or not 200 <= call.status < 300:
        return Usage()  # failed upstream: the reservation is released
    reported = call.extractor.usage() if call.extractor else None
    if reported is not None:
        return reported
    assert call.request is not None
    delivered = call.extractor.delivered_output_tokens() if call.extractor else 0
    prompt = call.request.prompt_tokens
    return Usage(
        input_tokens=prompt,
        output_tokens=delivered,
        total_tokens=prompt + delivered,
        estimated=True,
    )


# Header suffix of each limit type: OpenAI's own for tokens and requests.
_HEADER_UNITS = {
    LimitType.TOKEN: "tokens",
    LimitType.REQUESTS: "requests",
    LimitType.COST: "cost",
}


def quota_headers(counters: Iterable[CounterState], now: datetime) -> Mapping[str, str]:
    """OpenAI-style rate-limit headers: per unit, the quota with least left.

    Cost is written as a decimal amount of the rule's currency.
    """
    tightest: dict[LimitType, CounterState] = {}
    for counter in counters:
        kind = counter.rule.limit_type
        if kind not in tightest or counter.remaining < tightest[kind].remaining:
            tightest[kind] = counter
    headers: dict[str, str] = {}
    for kind, counter in tightest.items():
        unit = _HEADER_UNITS[kind]
        headers[f"x-ratelimit-limit-{unit}"] = amount_text(kind, counter.limit)
        remaining = amount_text(kind, counter.remaining)
        headers[f"x-ratelimit-remaining-{unit}"] = remaining
        reset = duration_text(counter.window.seconds_until_end(now))
        headers[f"x-ratelimit-reset-{unit}"] = reset
    return headers


def amount_text(kind: LimitType, amount: int) -> str:
    """A counter amount as clients read it: micro-units become a decimal."""
    return micros_text(amount) if kind is LimitType.COST else str(amount)


def duration_text(seconds: int) -> str:
    """Seconds as OpenAI writes reset times: `1h2m3s`, `4m0s`, `7s`."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def usage_event(
    call: Call, usage: Usage, time_text: str, charged: tuple[Charge, ...] = ()
) -> UsageEvent:
    """The call's usage event, built once it is decided or finished; `charged`
    are the amounts its settlement puts on each rule."""
    request = call.request
    return UsageEvent(
        id=call.request_id,
        time=time_text,
        consumer=call.consumer.name if call.consumer else "",
        decision=call.decision,
        api=request.api if request else "",
        model=request.model if request else "",
        stream=request.stream if request else False,
        status=call.status,
        windows=tuple(
            RuleWindow(c.rule.name, c.window.id, str(c.rule.limit_type), c.amount)
            for c in charged
        ),
        estimate_tokens=request.estimated_tokens if request else 0,
        usage=usage,
        charged_tokens=usage.total_tokens if call.reserved else 0,
        cost_micros=call_cost(call, usage),
        currency=call.price.currency if call.price else "",
        latency_ms=(time.monotonic() - call.started) * 1000,
        rules_revision=call.rules.revision,
        reason=call.reason,
    )
