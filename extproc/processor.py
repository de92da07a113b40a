"""The ext_proc servicer: one gRPC stream per HTTP request that Envoy forwards.

Envoy's rules, which this module keeps: exactly one reply per message, in order,
of the matching kind or an immediate response; every streamed body chunk is
answered, empty ones included; header values are read from and written to
`raw_value`; a refusal is only ever sent before response bytes have left Envoy.
A stream may end at any point (the client left, Envoy gave up), so settlement
runs from a `finally`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from typing import Any
from zoneinfo import ZoneInfo

import grpc
import structlog
from envoy.service.ext_proc.v3 import external_processor_pb2 as pb
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc

from extproc import metering, replies
from extproc.aggregates import UsageAggregates
from extproc.apis import shape_for_path
from extproc.apis.usage import Usage
from extproc.call import (
    Call,
    all_fail_open,
    amount_text,
    final_usage,
    plan_charges,
    plan_rates,
    rate_headers,
    settled_charges,
    settled_rates,
    usage_event,
)
from extproc.clock import Clock, system_clock
from extproc.errors import BadRequest, StoreUnavailable
from extproc.events import Decision, UsageEvent, price_unknown_entry
from extproc.identity import CONSUMER_HEADER, STRIPPED_HEADERS, identify
from extproc.metrics import Metrics
from extproc.rules.model import LimitType, QuotaRule, RateLimit, RateMeasure
from extproc.rules.source import RuleSource
from extproc.settlement import Settler
from extproc.store.quota_store import (
    Admission,
    Charge,
    CounterState,
    QuotaStore,
    RateCharge,
    RateState,
)

log = structlog.get_logger("extproc.processor")

# Compressed responses could not be read for usage; asking the provider for an
# uncompressed body keeps every response readable (Envoy may still compress
# towards the client with its own compressor filter).
_REQUEST_HEADERS_REMOVED = (*STRIPPED_HEADERS, "accept-encoding")


def decode_headers(headers: pb.HttpHeaders) -> dict[str, str]:
    """Header names and values of a message; values are read from `raw_value`."""
    decoded: dict[str, str] = {}
    for header in headers.headers.headers:
        raw = header.raw_value or header.value.encode()
        decoded[header.key.lower()] = raw.decode("latin-1")
    return decoded


# The generated servicer base is untyped; subclassing it is how grpc wires methods.
class ExternalProcessor(pb_grpc.ExternalProcessorServicer):  # type: ignore[misc]
    def __init__(
        self,
        rules: RuleSource,
        store: QuotaStore,
        settler: Settler,
        default_output_tokens: int,
        clock: Clock = system_clock,
        metrics: Metrics | None = None,
        passthrough_paths: tuple[str, ...] = (),
    ) -> None:
        self._rules = rules
        self._passthrough = passthrough_paths
        self._metrics = metrics or Metrics()
        self._store = store
        self._settler = settler
        self._default_output = default_output_tokens
        self._clock = clock
        self._aggregates = UsageAggregates(store.keys, store.timings.usage_retention_s)

    async def Process(
        self,
        request_iterator: AsyncIterator[pb.ProcessingRequest],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[pb.ProcessingResponse]:
        call = Call(rules=self._rules.current())
        try:
            async for message in request_iterator:
                started = time.perf_counter()
                reply = await self._answer(call, message)
                kind = message.WhichOneof("request")
                self._metrics.message(kind, time.perf_counter() - started)
                yield reply
        except Exception:
            # A bug must cost one request (Envoy answers it 500), not the server.
            log.exception("stream_failed", id=call.request_id)
            raise
        finally:
            self._finish(call)

    async def _answer(
        self, call: Call, message: pb.ProcessingRequest
    ) -> pb.ProcessingResponse:
        kind = message.WhichOneof("request")
        if kind == "request_headers":
            return self._on_request_headers(call, message.request_headers)
        if kind == "request_body":
            return await self._on_request_body(call, message.request_body)
        if kind == "response_headers":
            return self._on_response_headers(call, message.response_headers)
        if kind == "response_body":
            return self._on_response_body(call, message.response_body)
        if kind in ("request_trailers", "response_trailers"):
            return replies.continue_trailers(kind)
        # An unknown message kind from a newer Envoy: nothing sensible to answer.
        raise RuntimeError(f"unexpected ext_proc message {kind!r}")

    def _on_request_headers(
        self, call: Call, message: pb.HttpHeaders
    ) -> pb.ProcessingResponse:
        headers = decode_headers(message)
        call.envoy_request_id = headers.get("x-request-id", "")
        call.consumer = identify(headers, call.rules)
        if call.consumer is None:
            return self._refuse_now(
                call,
                Decision.UNAUTHENTICATED,
                401,
                "Missing or unknown API key. Send it as 'Authorization: Bearer "
                "<key>' or in the 'x-api-key' header.",
                "invalid_api_key",
            )

        call.path = headers.get(":path", "")
        call.shape = shape_for_path(call.path)
        if call.shape is not None and message.end_of_stream:
            return self._refuse_now(
                call,
                Decision.INVALID,
                400,
                "This endpoint needs a JSON request body.",
                "missing_body",
            )
        mutation = replies.header_mutation(
            {CONSUMER_HEADER: call.consumer.name}, remove=_REQUEST_HEADERS_REMOVED
        )
        return replies.continue_request_headers(mutation)

    async def _on_request_body(
        self, call: Call, message: pb.HttpBody
    ) -> pb.ProcessingResponse:
        if call.consumer is None:
            return replies.continue_request_body()
        if call.shape is None:
            # Metered by path alone: guessing the API from the body would let
            # an image or batch request pass as a cheap completion.
            return self._unmetered_body(call)
        try:
            call.request = call.shape.read_request(
                call.path, message.body, self._default_output
            )
            _check_model(call.request.model)
        except BadRequest as exc:
            return self._refuse_now(
                call, Decision.INVALID, 400, exc.message, "invalid_request", exc.param
            )

        refusal = await self._admit(call)
        if refusal is not None:
            return refusal
        new_body = call.request.forwarded_body
        if new_body is None:
            return replies.continue_request_body()
        length = replies.header_mutation({"content-length": str(len(new_body))})
        return replies.continue_request_body(new_body, length)

    def _unmetered_body(self, call: Call) -> pb.ProcessingResponse:
        """A request with a body on a path no API shape reads: a billable
        endpoint the sidecar cannot meter (batches, images, audio...). A
        consumer under any limit is refused it, so that it is no way around the
        limits, unless an operator opened the path."""
        assert call.consumer is not None
        bare = call.path.split("?", 1)[0]
        limited = call.rules.rules_by_consumer.get(call.consumer.name) or (
            call.rules.rate_limits_by_consumer.get(call.consumer.name)
        )
        opened = bool(self._passthrough) and bare.startswith(self._passthrough)
        if not limited or opened:
            return replies.continue_request_body()
        return self._refuse_now(
            call,
            Decision.INVALID,
            403,
            f"This gateway cannot meter calls to {bare}, so it refuses them for "
            "consumers under a quota or rate limit. An operator can open the "
            "path with EXTPROC_PASSTHROUGH_PATHS.",
            "unmetered_endpoint",
        )

    async def _admit(self, call: Call) -> pb.ProcessingResponse | None:
        """Reserve the call's estimate on its quotas and rate limits, in one round
        trip; a refusal reply, or None when admitted."""
        assert call.request is not None and call.consumer is not None
        rules = call.rules.rules_for(call.consumer.name, call.request.model)
        limits = call.rules.rate_limits_for(call.consumer.name, call.request.model)
        if not rules and not limits:
            return None  # no quota or limit applies to this model: unmetered
        now = self._clock()
        plan = metering.plan(rules, call.request.model, call.rules.pricing, now)
        self._warn_unpriced(call, plan)
        if plan.refused_by is not None:
            return self._refuse_unpriced(call, plan.refused_by)
        call.meters, call.price = plan.meters, plan.price()
        if call.price is None:
            call.price = call.rules.pricing.find(call.request.model, now)
        charges = plan_charges(plan.meters, call.request, now)
        rates = plan_rates(limits, call.request, now)
        try:
            admission = await self._store.reserve(
                call.consumer.name, call.request_id, charges, now, rates
            )
        except StoreUnavailable as exc:
            return self._store_unavailable(call, rules, limits, str(exc))

        call.charges, call.rates = charges, rates
        call.admission, call.admitted_at = admission, now
        if admission.admitted:
            call.decision = Decision.ADMITTED
            self._metrics.reserve(call.request.estimated_tokens)
            return None
        call.charges, call.rates = (), ()
        if admission.refused_by is not None:
            return self._refuse_quota(call, admission, charges)
        return self._refuse_rate(call, admission, rates)

    def _warn_unpriced(self, call: Call, plan: metering.Plan) -> None:
        """Say every time a cost rule met a model it has no price for: in the
        log and as a warning event on the stream."""
        if not plan.unpriced:
            return
        assert call.consumer is not None
        now_text = self._clock().isoformat()
        entries = []
        for unpriced in plan.unpriced:
            log.warning(
                "price_unknown",
                id=call.request_id,
                rule=unpriced.rule.name,
                model=unpriced.model,
                policy=str(unpriced.rule.unknown_price),
            )
            entries.append(
                price_unknown_entry(
                    call.consumer.name, call.request_id, unpriced, now_text
                )
            )
        self._settler.publish(entries)

    def _refuse_unpriced(self, call: Call, rule: QuotaRule) -> pb.ProcessingResponse:
        assert call.request is not None
        message = (
            f"No {rule.currency} price is configured for model "
            f"'{call.request.model}', and cost quota '{rule.name}' refuses "
            "unpriced models."
        )
        return self._refuse_now(
            call, Decision.REFUSED, 403, message, "model_not_priced", "model"
        )

    def _store_unavailable(
        self,
        call: Call,
        rules: tuple[QuotaRule, ...],
        limits: tuple[RateLimit, ...],
        reason: str,
    ) -> pb.ProcessingResponse | None:
        call.reason = reason
        if all_fail_open(rules, limits):
            call.decision = Decision.UNCOUNTED
            log.warning("admitted_uncounted", id=call.request_id, reason=reason)
            return None
        return self._refuse_now(
            call,
            Decision.UNAVAILABLE,
            503,
            "The quota service is temporarily unavailable; retry shortly.",
            "quota_service_unavailable",
            headers={"retry-after": "1"},
        )

    def _refuse_quota(
        self, call: Call, admission: Admission, charges: tuple[Charge, ...]
    ) -> pb.ProcessingResponse:
        counter = admission.refused_by
        assert counter is not None and call.request is not None
        now = self._clock()
        reset = counter.window.seconds_until_end(now)
        needed = next(c.amount for c in charges if c.rule is counter.rule)
        message = _quota_message(counter, needed)
        never_fits = needed > counter.limit  # waiting cannot help this call
        headers = {
            # Waiting out a day is no job for an SDK's automatic retries.
            "x-should-retry": "true" if reset <= 60 and not never_fits else "false",
            **rate_headers(admission, now),
        }
        if not never_fits:
            headers["retry-after"] = str(reset)
        return self._refuse_now(
            call, Decision.REFUSED, 429, message, "quota_exceeded", headers=headers
        )

    def _refuse_rate(
        self, call: Call, admission: Admission, rates: tuple[RateCharge, ...]
    ) -> pb.ProcessingResponse:
        state = admission.rate_refused_by
        assert state is not None
        pairs = zip(rates, admission.rates, strict=True)
        amount = next(rate.amount for rate, seen in pairs if seen is state)
        wait_s = _rate_wait_seconds(state, amount)
        headers = {
            "retry-after": str(wait_s),
            "x-should-retry": "true" if wait_s <= 60 else "false",
            **rate_headers(admission, self._clock()),
        }
        return self._refuse_now(
            call,
            Decision.REFUSED,
            429,
            _rate_message(state, amount, wait_s),
            "rate_limit_exceeded",
            headers=headers,
            error_type=str(state.limit.measure),
        )

    def _on_response_headers(
        self, call: Call, message: pb.HttpHeaders
    ) -> pb.ProcessingResponse:
        headers = decode_headers(message)
        call.status = _status(headers.get(":status", "0"))
        if call.decision is not Decision.ADMITTED or call.request is None:
            return replies.continue_response_headers()

        assert call.shape is not None and call.admission is not None
        content_type = headers.get("content-type", "")
        call.extractor = call.shape.extractor(
            call.request,
            content_type,
            content_encoding=headers.get("content-encoding", ""),
        )
        headers = rate_headers(call.admission, self._clock())
        if not headers:
            return replies.continue_response_headers()
        return replies.continue_response_headers(replies.header_mutation(headers))

    def _on_response_body(
        self, call: Call, message: pb.HttpBody
    ) -> pb.ProcessingResponse:
        replacement = None
        if call.extractor is not None:
            replacement = call.extractor.feed(message.body)
        if message.end_of_stream:
            call.response_complete = True
            self._finish(call)
        return replies.continue_response_body(replacement)

    def _count_usage(self, call: Call, event: UsageEvent) -> None:
        """Metrics of a reserved call at its end: its hold goes, usage counts."""
        assert call.request is not None and call.consumer is not None
        self._metrics.release(call.request.estimated_tokens)
        cost = None
        if event.cost_micros is not None:
            cost = (event.cost_micros, event.currency)
        self._metrics.usage(
            call.rules, call.consumer.name, event.model, event.usage, cost
        )

    def _refuse_now(
        self,
        call: Call,
        decision: Decision,
        status: int,
        message: str,
        code: str,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
        error_type: str | None = None,
    ) -> pb.ProcessingResponse:
        """Answer the client directly and record the call's event."""
        call.decision, call.status = decision, status
        call.reason = call.reason or code
        self._finish(call)
        return replies.immediate_error(
            status, message, code, headers, param, error_type
        )

    def _finish(self, call: Call) -> None:
        """Settle or record the call, once, whichever way its stream ended."""
        if call.finished:
            return
        call.finished = True
        if call.consumer is None and call.decision is not Decision.UNAUTHENTICATED:
            return  # the stream ended before its headers were read
        now = self._clock()
        now_text = now.isoformat()
        self._metrics.call(call.decision, call.status)
        if not call.reserved:
            totals = self._aggregates.for_call(call, Usage(), now)
            self._settler.record(usage_event(call, Usage(), now_text), totals)
            return
        if not call.response_complete and not call.reason:
            call.reason = "stream_ended_early"
        usage = final_usage(call)
        charged = settled_charges(call, usage)
        event = usage_event(call, usage, now_text, charged)
        self._count_usage(call, event)
        assert call.consumer is not None
        totals = self._aggregates.for_call(call, usage, now, event.cost_micros)
        rates = settled_rates(call.rates, usage)
        self._settler.settle(
            call.consumer.name, call.request_id, charged, event, totals, rates
        )


_QUOTA_WORDS = {
    LimitType.TOKEN: "Token",
    LimitType.COST: "Cost",
    LimitType.REQUESTS: "Request",
}


_UNIT_WORDS = {LimitType.TOKEN: "tokens", LimitType.REQUESTS: "requests"}


def _quota_message(counter: CounterState, estimate: int) -> str:
    rule = counter.rule
    resets = counter.window.end.astimezone(ZoneInfo(rule.zone)).isoformat()
    needed, limit = _amount(rule, estimate), _amount(rule, counter.limit)
    if estimate > counter.limit:
        return (
            f"This call's estimate of {needed} exceeds the whole {rule.cycle} "
            f"quota '{rule.name}' of {limit}; lower max_tokens or shorten the "
            "prompt."
        )
    return (
        f"{_QUOTA_WORDS[rule.limit_type]} quota '{rule.name}' is spent for this "
        f"{rule.cycle} ({rule.zone}): {_amount(rule, counter.remaining)} of "
        f"{limit} remain and this call needs an estimated {needed}. It resets "
        f"at {resets}."
    )


def _rate_wait_seconds(state: RateState, amount: int) -> int:
    """Whole seconds until the call would fit (a slot: a guess of one second)."""
    if state.window is None:
        return 1
    limit = state.limit.amount
    wait_ms = state.window.wait_ms(state.previous, state.current, amount, limit)
    if wait_ms is None:  # never fits: the whole window is the honest answer
        return state.window.width_ms // 1000
    return max(1, -(-wait_ms // 1000))


def _rate_message(state: RateState, amount: int, wait_s: int) -> str:
    limit = state.limit
    if limit.measure is RateMeasure.CONCURRENT:
        return (
            f"Concurrency limit '{limit.name}' reached: {limit.amount} calls may be "
            "in flight at once. Retry when one of them ends."
        )
    what = (
        f"{limit.counts} tokens" if limit.measure is RateMeasure.TOKENS else "requests"
    )
    per = f"{limit.amount} {what} per {limit.unit}"
    if amount > limit.amount:
        return (
            f"This call's estimate of {amount} {what} exceeds the whole rate limit "
            f"'{limit.name}' of {per}; lower max_tokens or shorten the prompt."
        )
    needs = f" and this call needs an estimated {amount}" if amount > 1 else ""
    return (
        f"Rate limit '{limit.name}' reached: {per}; {state.remaining} remain"
        f"{needs}. Retry in {wait_s} s."
    )


def _amount(rule: QuotaRule, amount: int) -> str:
    """An amount in the rule's unit, for people: `12 tokens`, `0.5 USD`."""
    text = amount_text(rule.limit_type, amount)
    if rule.limit_type is LimitType.COST:
        return f"{text} {rule.currency}"
    return f"{text} {_UNIT_WORDS[rule.limit_type]}"


# Model names go into usage keys, metrics and tables: no real one is longer.
MAX_MODEL_CHARS = 256


def _check_model(model: str) -> None:
    """BadRequest for a model name no provider uses: too long, or with control
    characters that would break logs and tables."""
    if len(model) > MAX_MODEL_CHARS or not model.isprintable():
        raise BadRequest(
            f"'model' must be at most {MAX_MODEL_CHARS} printable characters",
            param="model",
        )


def _status(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 0
