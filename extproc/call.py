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
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from extproc.apis import ApiShape, LlmRequest, Usage, UsageExtractor
from extproc.events import Decision, UsageEvent
from extproc.rules.model import (
    Consumer,
    FailurePolicy,
    Mode,
    QuotaRule,
    RateLimit,
    RateMeasure,
    RuleSet,
    TokenCount,
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
    shape: ApiShape | None = None
    request: LlmRequest | None = None
    charges: tuple[Charge, ...] = ()
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
    rules: tuple[QuotaRule, ...], amount: int, now: datetime
) -> tuple[Charge, ...]:
    """The estimate put on the current window of every rule."""
    return tuple(
        Charge(rule, window_at(now, rule.cycle, rule.zone, rule.week_start), amount)
        for rule in rules
    )


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
    if limit.tokens is TokenCount.INPUT:
        return usage.input_tokens
    if limit.tokens is TokenCount.OUTPUT:
        return usage.output_tokens
    return usage.total_tokens


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


def quota_headers(counter: CounterState, now: datetime) -> Mapping[str, str]:
    """OpenAI-style rate-limit headers for the tightest quota of a call."""
    reset = counter.window.seconds_until_end(now)
    return {
        "x-ratelimit-limit-tokens": str(counter.limit),
        "x-ratelimit-remaining-tokens": str(counter.remaining),
        "x-ratelimit-reset-tokens": duration_text(reset),
    }


def rate_headers(admission: Admission, now: datetime) -> dict[str, str]:
    """OpenAI-style headers from the enforced quota or limit with the least left
    (or the one that refused): requests from requests limits, tokens from quotas
    and token limits."""
    enforced = [r for r in admission.rates if r.limit.mode is Mode.ENFORCE]
    requests = [r for r in enforced if r.limit.measure is RateMeasure.REQUESTS]
    tokens = [r for r in enforced if r.limit.measure is RateMeasure.TOKENS]
    refused = admission.rate_refused_by
    headers: dict[str, str] = {}
    if requests:
        tightest = refused if refused in requests else min(requests, key=_left)
        headers |= _rate_state_headers(tightest, "requests")
    counter = admission.tightest()
    token_limit = refused if refused in tokens else min(tokens, key=_left, default=None)
    if token_limit is not None and (
        refused is token_limit
        or counter is None
        or (admission.refused_by is None and token_limit.remaining < counter.remaining)
    ):
        headers |= _rate_state_headers(token_limit, "tokens")
    elif counter is not None:
        headers |= quota_headers(counter, now)
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


def usage_event(call: Call, usage: Usage, time_text: str) -> UsageEvent:
    """The call's usage event, built once it is decided or finished."""
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
        windows=tuple(f"{c.rule.name}/{c.window.id}" for c in call.charges),
        estimate_tokens=request.estimated_tokens if request else 0,
        usage=usage,
        charged_tokens=usage.total_tokens if call.reserved else 0,
        latency_ms=(time.monotonic() - call.started) * 1000,
        rules_revision=call.rules.revision,
        reason=call.reason,
        shadow_refusals=call.admission.shadow_refusals if call.admission else (),
    )
