"""Prometheus metrics, served on a port of their own (`metrics_port`).

Label values stay few whatever clients send: consumers come from the rules,
models are folded to the configured Pricing and QuotaRule patterns (any other
model is `other`), statuses are HTTP codes. The hot path looks children up in
small dicts of pre-bound label sets; it never builds label tuples for the
client library to hash again.
"""

from __future__ import annotations

import fnmatch
import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
)

from extproc.apis.usage import Usage
from extproc.rules.model import RuleSet, specificity

OTHER_MODEL = "other"
MESSAGE_KINDS = (
    "request_headers",
    "request_body",
    "response_headers",
    "response_body",
    "request_trailers",
    "response_trailers",
)
REDIS_OPERATIONS = ("reserve", "settle", "append", "admin")
TOKEN_KINDS = ("input", "output", "cached_input", "cache_write_input", "reasoning")
# Seconds: ext_proc answers must stay well inside Envoy's message timeout.
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)
# Distinct model names remembered per rule set; past it, names are matched
# again on each call rather than cached, so memory stays bounded.
_MODEL_CACHE_SIZE = 4096


class Metrics:
    """Every metric of one sidecar, in a registry of its own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.calls = Counter(
            "extproc_calls", "Calls decided", ["decision", "status"], registry=r
        )
        self.tokens = Counter(
            "extproc_tokens",
            "Tokens reported by providers (input includes cached, output reasoning)",
            ["consumer", "model", "kind"],
            registry=r,
        )
        self.cost = Counter(
            "extproc_cost_micros",
            "Cost of settled calls, micro-units (1e-6) of the currency",
            ["consumer", "model", "currency"],
            registry=r,
        )
        self.messages = Histogram(
            "extproc_message_duration_seconds",
            "Time to answer one ext_proc message",
            ["kind"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.redis_errors = Counter(
            "extproc_redis_errors", "Redis calls that failed", ["operation"], registry=r
        )
        self.redis_latency = Histogram(
            "extproc_redis_duration_seconds",
            "Redis round trips",
            ["operation"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.reloads = Counter(
            "extproc_rule_reloads", "Rule reloads", ["outcome"], registry=r
        )
        self.reserved = Gauge(
            "extproc_reserved_tokens_in_flight",
            "Tokens this replica holds reserved for calls in flight",
            registry=r,
        )
        self._bind()
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def _bind(self) -> None:
        self._messages = {k: self.messages.labels(k) for k in MESSAGE_KINDS}
        self._redis = {
            op: (self.redis_latency.labels(op), self.redis_errors.labels(op))
            for op in REDIS_OPERATIONS
        }
        self._reloads = {
            True: self.reloads.labels("ok"),
            False: self.reloads.labels("failed"),
        }
        self._calls: dict[tuple[str, int], Counter] = {}
        self._tokens: dict[tuple[str, str], tuple[Counter, ...]] = {}
        self._costs: dict[tuple[str, str, str], Counter] = {}
        self._models = _ModelLabels()

    def serve(self, host: str, port: int) -> None:
        """Serve /metrics on host:port from a thread of its own."""
        self._server, self._thread = start_http_server(port, host, self.registry)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def message(self, kind: str, seconds: float) -> None:
        child = self._messages.get(kind)
        if child is not None:
            child.observe(seconds)

    def redis(self, operation: str, seconds: float, ok: bool) -> None:
        latency, errors = self._redis[operation]
        latency.observe(seconds)
        if not ok:
            errors.inc()

    def rules_reloaded(self, ok: bool) -> None:
        """Count a reload of the rules folder: accepted (ok) or refused."""
        self._reloads[ok].inc()

    def reserve(self, tokens: int) -> None:
        self.reserved.inc(tokens)

    def release(self, tokens: int) -> None:
        self.reserved.dec(tokens)

    def call(self, decision: str, status: int) -> None:
        key = (decision, status)
        child = self._calls.get(key)
        if child is None:
            child = self._calls[key] = self.calls.labels(decision, str(status))
        child.inc()

    def usage(
        self,
        rules: RuleSet,
        consumer: str,
        model: str,
        usage: Usage,
        cost: tuple[int, str] | None,
    ) -> None:
        """Count a settled call's tokens and cost (micro-units, currency)."""
        label = self._models.label(rules, model)
        children = self._tokens.get((consumer, label))
        if children is None:
            children = tuple(
                self.tokens.labels(consumer, label, kind) for kind in TOKEN_KINDS
            )
            self._tokens[(consumer, label)] = children
        counts = (
            usage.input_tokens,
            usage.output_tokens,
            usage.cached_input_tokens,
            usage.cache_write_input_tokens,
            usage.reasoning_tokens,
        )
        for child, count in zip(children, counts, strict=True):
            if count:
                child.inc(count)
        if cost is not None and cost[0]:
            self._cost_child(consumer, label, cost[1]).inc(cost[0])

    def _cost_child(self, consumer: str, model: str, currency: str) -> Counter:
        key = (consumer, model, currency)
        child = self._costs.get(key)
        if child is None:
            child = self._costs[key] = self.cost.labels(consumer, model, currency)
        return child


class _ModelLabels:
    """Folds model names to the rule set's patterns; the rest is `other`."""

    def __init__(self) -> None:
        self._revision = ""
        self._patterns: tuple[str, ...] = ()
        self._cache: dict[str, str] = {}

    def label(self, rules: RuleSet, model: str) -> str:
        if rules.revision != self._revision:
            self._revision, self._patterns = rules.revision, _patterns(rules)
            self._cache = {}
        found = self._cache.get(model)
        if found is not None:
            return found
        found = next(
            (p for p in self._patterns if fnmatch.fnmatchcase(model, p)), OTHER_MODEL
        )
        if len(self._cache) < _MODEL_CACHE_SIZE:
            self._cache[model] = found
        return found


def _patterns(rules: RuleSet) -> tuple[str, ...]:
    """Every configured model pattern, the most specific first."""
    found = set(rules.pricing.patterns())
    for rule in rules.rules.values():
        found.update(rule.models)
    return tuple(sorted(sorted(found), key=specificity, reverse=True))
