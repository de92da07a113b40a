"""The Prometheus endpoint, scraped while real traffic goes through Envoy."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from extproc.apis.openai_chat import ChatCompletions
from tests.harness.rules import price, quota, rule_set
from tests.harness.stack import Stack

pytestmark = pytest.mark.e2e

KEYS = {"erin": "sk-erin-0123456789"}
# 100 input tokens at 1.00 and 50 output at 2.00 per million: 200 micro-units.
REPORTED = {"x-fake-prompt-tokens": "100", "x-fake-completion-tokens": "50"}
MINI = price("mini", ("gpt-4o-mini*",), "1.00", "2.00")
BODY = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 50}


def scrape(stack: Stack) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the sidecar's /metrics, by name and sorted labels."""
    assert stack.sidecar is not None
    port = stack.sidecar.settings.metrics_port
    with httpx.Client(trust_env=False) as http:
        text = http.get(f"http://127.0.0.1:{port}/metrics").text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def post(
    stack: Stack, model: str, key: str = KEYS["erin"], stream: bool = False, **extra
) -> int:
    headers = {"authorization": f"Bearer {key}", **REPORTED, **extra}
    body = {"model": model, "stream": stream, **BODY}
    with stack.http(timeout=10) as http:
        reply = http.post("/v1/chat/completions", json=body, headers=headers)
        return reply.status_code


def test_metrics_count_real_traffic(fresh_stack: Stack) -> None:
    """Calls, tokens, cost, message and Redis timings and holds in flight are
    exported with bounded labels, matching the traffic sent."""
    rules = {quota("daily", 100_000, models=("gpt-4o*", "llama*")): ("erin",)}
    fresh_stack.use_rules(rule_set(KEYS, rules, (MINI,)))
    slow = {"stream": True, "x-fake-chunks": "20", "x-fake-delay-ms": "50"}
    in_flight = threading.Thread(
        target=post, args=(fresh_stack, "gpt-4o-mini"), kwargs=slow
    )

    in_flight.start()
    time.sleep(0.3)  # the slow call is admitted and streaming by now
    during = scrape(fresh_stack)
    in_flight.join()
    statuses = [post(fresh_stack, "gpt-4o-mini-2024") for _ in range(2)]
    statuses.append(post(fresh_stack, "mistral-large"))
    statuses.append(post(fresh_stack, "gpt-4o-mini", key="sk-nobody"))
    fresh_stack.settled()
    after = scrape(fresh_stack)

    def value(name: str, **labels: str) -> float:
        return after.get((name, tuple(sorted(labels.items()))), 0.0)

    assert _estimate() == during[("extproc_reserved_tokens_in_flight", ())]
    assert [200, 200, 200, 401] == statuses
    assert 0 == value("extproc_reserved_tokens_in_flight")
    assert (3, 1, 1) == (
        value("extproc_calls_total", decision="admitted", status="200"),
        value("extproc_calls_total", decision="unmetered", status="200"),
        value("extproc_calls_total", decision="unauthenticated", status="401"),
    )
    mini = {"consumer": "erin", "model": "gpt-4o-mini*"}
    assert (300, 150) == (
        value("extproc_tokens_total", kind="input", **mini),
        value("extproc_tokens_total", kind="output", **mini),
    )
    assert 600 == value("extproc_cost_micros_total", currency="USD", **mini)
    assert 5 == value("extproc_message_duration_seconds_count", kind="request_headers")
    assert 3 == value("extproc_redis_duration_seconds_count", operation="reserve")
    assert 0 == value("extproc_redis_errors_total", operation="reserve")
    models = {labels for name, labels in after if name == "extproc_tokens_total"}
    assert {"gpt-4o-mini*"} == {dict(labels)["model"] for labels in models}


def test_unconfigured_models_fold_into_other(fresh_stack: Stack) -> None:
    """A model no pattern names is counted under model="other"."""
    fresh_stack.use_rules(rule_set(KEYS, {quota("daily", 100_000): ("erin",)}))

    post(fresh_stack, "any-model-a")
    post(fresh_stack, "any-model-b")
    fresh_stack.settled()
    after = scrape(fresh_stack)

    labels = (("consumer", "erin"), ("kind", "input"), ("model", "other"))
    assert 200 == after[("extproc_tokens_total", labels)]


def _estimate() -> int:
    body = json.dumps({"model": "gpt-4o-mini", "stream": True, **BODY}).encode()
    return ChatCompletions().read_request("", body, 1024).estimated_tokens
