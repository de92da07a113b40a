"""One LLM call's journey through the sidecar: identity, admission, settlement.

A `Call` lives for one ext_proc stream. It reads the rule snapshot once, at the
start, so a reload mid-call never mixes two rule sets. Its methods take the
decoded parts of each ext_proc message and return what to tell Envoy, as plain
values; the processor turns them into protobuf.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from extproc.apis import ApiShape, LlmRequest, Usage, UsageExtractor
from extproc.cost import cost_micros, micros_text
from extproc.events import Decision, RuleWindow, UsageEvent
from extproc.metering import Meter, counted
from extproc.rules.model import (
    Consumer,
    FailurePolicy,
    LimitType,
    Mode,
    Price,
    QuotaRule,
    RateLimit,
    RateMeasure,
    RuleSet,
)
from extproc.sliding import SlidingWindow
from extproc.store.quota_store import (
    Admission,
    Charge,
    CounterState,
    RateCharge,
    RateState,
)
from extproc.windows import window_at


@dataclass(slots=True)
class Call:
    rules: RuleSet
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    started: float = field(default_factory=time.monotonic)
    consumer: Consumer | None = None
    path: str = ""  # the request's :path, query string included
    envoy_request_id: str = ""  # Envoy's x-request-id, for joining its logs
    shape: ApiShape | None = None
    request: LlmRequest | None = None
    charges: tuple[Charge, ...] = ()
    meters: tuple[Meter, ...] = ()  # one per charge, in the same order
    price: Price | None = None  # what the call's cost is reported in
    rates: tuple[RateCharge, ...] = ()
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
        return self.decision is Decision.ADMITTED and bool(self.charges or self.rates)


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


def plan_rates(
    limits: tuple[RateLimit, ...], request: LlmRequest, now: datetime
) -> tuple[RateCharge, ...]:
    """What admission puts on each rate limit: estimated tokens, or one call."""
    now_ms = int(now.timestamp() * 1000)
    estimate = Usage(
        input_tokens=request.prompt_tokens,
        output_tokens=request.output_allowance,
        total_tokens=request.estimated_tokens,
    )
    return tuple(
        RateCharge(
            limit,
            SlidingWindow.at(now_ms, limit.width_ms) if limit.unit else None,
            rate_amount(limit, estimate),
        )
        for limit in limits
    )


def rate_amount(limit: RateLimit, usage: Usage) -> int:
    """The amount a call puts on `limit`, given its (estimated or actual) usage."""
    if limit.measure is not RateMeasure.TOKENS:
        return 1
    return counted(
        limit.counts, usage.total_tokens, usage.input_tokens, usage.output_tokens
    )


def settled_rates(
    rates: tuple[RateCharge, ...], usage: Usage
) -> tuple[RateCharge, ...]:
    """The rate charges of a finished call: token limits get the actual count."""
    return tuple(replace(r, amount=rate_amount(r.limit, usage)) for r in rates)


def all_fail_open(
    rules: tuple[QuotaRule, ...], limits: tuple[RateLimit, ...] = ()
) -> bool:
    """Whether Redis being away may admit the call: shadow rules never refuse."""
    kinds = [(r.failure_policy, r.mode) for r in rules]
    kinds += [(limit.failure_policy, limit.mode) for limit in limits]
    return all(
        policy is FailurePolicy.OPEN or mode is Mode.SHADOW for policy, mode in kinds
    )


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


def rate_headers(admission: Admission, now: datetime) -> dict[str, str]:
    """OpenAI-style headers for a call: per unit, the enforced quota or rate
    limit with the least left, or the one that refused the call."""
    refused = admission.refused_by
    enforced = [c for c in admission.counters if c.rule.mode is Mode.ENFORCE]
    headers = dict(quota_headers((refused,) if refused else enforced, now))
    if refused is not None:
        return headers
    for unit, measure in (
        ("requests", RateMeasure.REQUESTS),
        ("tokens", RateMeasure.TOKENS),
    ):
        states = [
            r
            for r in admission.rates
            if r.limit.mode is Mode.ENFORCE and r.limit.measure is measure
        ]
        if not states:
            continue
        rate_refused = admission.rate_refused_by
        state = rate_refused if rate_refused in states else min(states, key=_left)
        shown = headers.get(f"x-ratelimit-remaining-{unit}")
        if state is rate_refused or shown is None or state.remaining < int(shown):
            headers |= _rate_state_headers(state, unit)
    return headers


def _left(state: RateState) -> int:
    return state.remaining


def _rate_state_headers(state: RateState, what: str) -> dict[str, str]:
    return {
        f"x-ratelimit-limit-{what}": str(state.limit.amount),
        f"x-ratelimit-remaining-{what}": str(state.remaining),
        f"x-ratelimit-reset-{what}": duration_text(math.ceil(state.reset_ms / 1000)),
    }


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
        shadow_refusals=call.admission.shadow_refusals if call.admission else (),
        request_id=call.envoy_request_id,
    )
