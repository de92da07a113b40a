"""One LLM call's journey through the sidecar: identity, admission, settlement.

A `Call` lives for one ext_proc stream. It reads the rule snapshot once, at the
start, so a reload mid-call never mixes two rule sets. Its methods take the
decoded parts of each ext_proc message and return what to tell Envoy, as plain
values; the processor turns them into protobuf.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from extproc.apis import ApiShape, LlmRequest, Usage, UsageExtractor
from extproc.events import Decision, UsageEvent
from extproc.rules.model import Consumer, FailurePolicy, QuotaRule, RuleSet
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
    rules: tuple[QuotaRule, ...], amount: int, now: datetime
) -> tuple[Charge, ...]:
    """The estimate put on the current window of every rule."""
    return tuple(
        Charge(rule, window_at(now, rule.cycle, rule.zone, rule.week_start), amount)
        for rule in rules
    )


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


def quota_headers(counter: CounterState, now: datetime) -> Mapping[str, str]:
    """OpenAI-style rate-limit headers for the tightest quota of a call."""
    reset = counter.window.seconds_until_end(now)
    return {
        "x-ratelimit-limit-tokens": str(counter.limit),
        "x-ratelimit-remaining-tokens": str(counter.remaining),
        "x-ratelimit-reset-tokens": duration_text(reset),
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
    )
