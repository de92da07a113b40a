"""A usage event's flat fields, as the call log line gets them."""

from __future__ import annotations

from extproc.apis.usage import Usage
from extproc.events import Decision, RuleWindow, UsageEvent


def _event() -> UsageEvent:
    return UsageEvent(
        id="req-1",
        time="2026-01-01T00:00:00+00:00",
        consumer="team-a",
        decision=Decision.ADMITTED,
        api="openai.chat_completions",
        model="gpt-x",
        stream=True,
        status=200,
        windows=(
            RuleWindow("daily", "20260101", "token", 30),
            RuleWindow("monthly", "20260101", "token", 30),
        ),
        estimate_tokens=300,
        usage=Usage(input_tokens=20, output_tokens=10, total_tokens=30),
        charged_tokens=30,
        latency_ms=12.34567,
        rules_revision="rev-7",
    )


def test_fields_flatten_usage_after_the_event_fields() -> None:
    """Usage numbers follow the event's own fields, windows joined, latency rounded."""
    expected = {
        "id": "req-1",
        "time": "2026-01-01T00:00:00+00:00",
        "consumer": "team-a",
        "decision": "admitted",
        "api": "openai.chat_completions",
        "model": "gpt-x",
        "stream": True,
        "status": 200,
        "windows": "daily/20260101,monthly/20260101",
        "estimate_tokens": 300,
        "charged_tokens": 30,
        "cost_micros": None,
        "currency": "",
        "latency_ms": 12.346,
        "rules_revision": "rev-7",
        "reason": "",
        "shadow_refusals": "",
        "request_id": "",
        "input_tokens": 20,
        "output_tokens": 10,
        "total_tokens": 30,
        "cached_input_tokens": 0,
        "cache_write_input_tokens": 0,
        "reasoning_tokens": 0,
        "estimated": False,
    }
    actual = _event().fields()
    assert list(expected.items()) == list(actual.items())
