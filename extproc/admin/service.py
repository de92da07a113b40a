"""The Admin gRPC servicer: quota status, audited edits, usage and audit queries.

Every call is authenticated first: without a valid bearer token it ends with
UNAUTHENTICATED before anything is read or written. Our errors map to gRPC
status codes here, in one place.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeAlias, TypeVar
from zoneinfo import ZoneInfo

import grpc
import structlog

from extproc.admin.auth import TokenRegistry, bearer_token
from extproc.admin.usage_query import QueryError, UsageQuery, UsageSums
from extproc.admin.v1 import admin_pb2 as pb
from extproc.admin.v1 import admin_pb2_grpc as pb_grpc
from extproc.aggregates import Metric, buckets_between
from extproc.clock import Clock
from extproc.errors import StoreUnavailable
from extproc.rules.model import LimitType, QuotaRule
from extproc.rules.source import RuleSource
from extproc.store.admin_store import AdminStore, AuditRecord, EditRefused
from extproc.store.admin_store import WindowStatus as Status
from extproc.windows import Window, window_at

log = structlog.get_logger("extproc.admin")

T = TypeVar("T")
Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"

DEFAULT_AUDIT_LIMIT = 50
MAX_AUDIT_LIMIT = 1_000
# Names that are safe inside a Redis key's hash tag and usage fields.
_NAME = re.compile(r"[^{}:|,\s]{1,200}")


class Invalid(Exception):
    """A request that cannot be served as sent: INVALID_ARGUMENT."""


class NotFound(Exception):
    """A consumer or rule that the active rules do not know: NOT_FOUND."""


_CODES: dict[type[Exception], grpc.StatusCode] = {
    Invalid: grpc.StatusCode.INVALID_ARGUMENT,
    QueryError: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    EditRefused: grpc.StatusCode.FAILED_PRECONDITION,
    StoreUnavailable: grpc.StatusCode.UNAVAILABLE,
}


class AdminService(pb_grpc.AdminServicer):
    def __init__(
        self,
        rules: RuleSource,
        store: AdminStore,
        tokens: TokenRegistry,
        clock: Clock,
    ) -> None:
        self._rules = rules
        self._store = store
        self._tokens = tokens
        self._clock = clock

    async def GetQuotaStatus(
        self, request: pb.GetQuotaStatusRequest, context: Context
    ) -> pb.GetQuotaStatusResponse:
        async def work(who: str) -> pb.GetQuotaStatusResponse:
            now = self._clock()
            rules = self._rules_of(request.consumer, request.rule)
            statuses = await self._statuses(request.consumer, rules, now)
            return pb.GetQuotaStatusResponse(statuses=statuses)

        return await self._serve(context, work)

    async def AdjustQuota(
        self, request: pb.AdjustQuotaRequest, context: Context
    ) -> pb.AdjustQuotaResponse:
        async def work(who: str) -> pb.AdjustQuotaResponse:
            change = _change(request)
            now = self._clock()
            (rule,) = self._rules_of(request.consumer, request.rule)
            window = _window(rule, now)
            action = "add_tokens" if change[1] else "set_quota"
            record = self._record(who, action, request.consumer, rule, window, request)
            saved = await self._store.adjust(rule, window, change, record)
            log.info("admin_edit", **asdict(saved))
            (status,) = await self._statuses(request.consumer, (rule,), now)
            return pb.AdjustQuotaResponse(status=status, audit=_audit(saved))

        return await self._serve(context, work)

    async def ResetQuota(
        self, request: pb.ResetQuotaRequest, context: Context
    ) -> pb.ResetQuotaResponse:
        async def work(who: str) -> pb.ResetQuotaResponse:
            _require_reason(request.reason)
            now = self._clock()
            rules = self._rules_of(request.consumer, request.rule)
            targets = []
            for rule in rules:
                window = _window(rule, now)
                record = self._record(
                    who, "reset", request.consumer, rule, window, request
                )
                targets.append((window, record))
            saved = await self._store.reset(targets)
            for record in saved:
                log.info("admin_edit", **asdict(record))
            statuses = await self._statuses(request.consumer, rules, now)
            audit = [_audit(record) for record in saved]
            return pb.ResetQuotaResponse(statuses=statuses, audit=audit)

        return await self._serve(context, work)

    async def QueryUsage(
        self, request: pb.QueryUsageRequest, context: Context
    ) -> pb.QueryUsageResponse:
        async def work(who: str) -> pb.QueryUsageResponse:
            query = _query(request)
            consumer = query.filters.get("consumer")
            if consumer is not None:
                _check_name(consumer, "filter.consumer")
            names = [consumer] if consumer else sorted(self._rules.current().consumers)
            sums = UsageSums.of(query)
            starts = list(buckets_between(query.start, query.end))
            for name in names:
                found = await self._store.usage_buckets(name, starts)
                for start, fields in zip(starts, found, strict=True):
                    sums.add_bucket(name, start, fields)
            return pb.QueryUsageResponse(rows=_rows(sums))

        return await self._serve(context, work)

    async def ListAudit(
        self, request: pb.ListAuditRequest, context: Context
    ) -> pb.ListAuditResponse:
        async def work(who: str) -> pb.ListAuditResponse:
            if request.consumer:
                _check_name(request.consumer, "consumer")
            limit = min(request.limit or DEFAULT_AUDIT_LIMIT, MAX_AUDIT_LIMIT)
            if limit < 0:
                raise Invalid("limit must not be negative")
            entries = await self._store.audit_entries(request.consumer, limit)
            return pb.ListAuditResponse(entries=[_audit(e) for e in entries])

        return await self._serve(context, work)

    async def _serve(self, context: Context, work: Callable[[str], Awaitable[T]]) -> T:
        """Authenticate, run `work` with the caller's name, map our errors."""
        who = self._tokens.name_of(bearer_token(context.invocation_metadata() or ()))
        if who is None:
            await _abort(
                context,
                grpc.StatusCode.UNAUTHENTICATED,
                "a valid admin token is needed: 'authorization: Bearer <token>'",
            )
        try:
            return await work(who)
        except tuple(_CODES) as exc:
            await _abort(context, _CODES[type(exc)], str(exc))

    def _rules_of(self, consumer: str, rule: str) -> tuple[QuotaRule, ...]:
        """The consumer's rules (or the one named), from the active rule set."""
        rules = self._rules.current()
        if consumer not in rules.consumers:
            raise NotFound(f"no consumer {consumer!r} in the active rules")
        bound = rules.rules_by_consumer.get(consumer, ())
        if not rule:
            return bound
        chosen = tuple(r for r in bound if r.name == rule)
        if not chosen:
            raise NotFound(f"no rule {rule!r} binds consumer {consumer!r}")
        return chosen

    async def _statuses(
        self, consumer: str, rules: tuple[QuotaRule, ...], now: datetime
    ) -> list[pb.QuotaStatus]:
        windows = [(rule, _window(rule, now)) for rule in rules]
        found = await self._store.status(consumer, windows, now) if windows else []
        return [_status(consumer, status, now) for status in found]

    def _record(
        self,
        who: str,
        action: str,
        consumer: str,
        rule: QuotaRule,
        window: Window,
        request: pb.AdjustQuotaRequest | pb.ResetQuotaRequest,
    ) -> AuditRecord:
        return AuditRecord(
            id=uuid.uuid4().hex,
            time=self._clock().astimezone(UTC).isoformat(),
            who=who,
            action=action,
            consumer=consumer,
            rule=rule.name,
            window_id=window.id,
            reason=request.reason,
        )


async def _abort(context: Context, code: grpc.StatusCode, message: str) -> NoReturn:
    await context.abort(code, message)
    raise AssertionError("abort returns only by raising")  # pragma: no cover


def _window(rule: QuotaRule, now: datetime) -> Window:
    return window_at(now, rule.cycle, rule.zone, rule.week_start)


# Counters are read as Lua numbers (doubles), exact up to 2^53 - 1.
MAX_COUNT = 2**53 - 1
# An audit reason is a sentence, not a document; every entry is kept and logged.
MAX_REASON_CHARS = 1000


def _change(request: pb.AdjustQuotaRequest) -> tuple[str, bool, int]:
    """The edit asked for: (counter field, add rather than set, tokens)."""
    _require_reason(request.reason)
    if not request.rule:
        raise Invalid("rule is required: an edit applies to one rule's window")
    kind = request.WhichOneof("change")
    if kind == "set_quota":
        if not 0 <= request.set_quota <= MAX_COUNT:
            raise Invalid(f"set_quota must be between 0 and {MAX_COUNT}")
        return "quota", False, int(request.set_quota)
    if kind == "add_tokens":
        if request.add_tokens == 0 or abs(request.add_tokens) > MAX_COUNT:
            raise Invalid(f"add_tokens must be non-zero and within ±{MAX_COUNT}")
        return "topup", True, int(request.add_tokens)
    raise Invalid("say what to change: set_quota or add_tokens")


def _require_reason(reason: str) -> None:
    if not reason.strip():
        raise Invalid("reason is required: say why, for the audit")
    if len(reason) > MAX_REASON_CHARS:
        raise Invalid(f"reason is longer than {MAX_REASON_CHARS} characters")


def _check_name(name: str, what: str) -> None:
    if not _NAME.fullmatch(name):
        raise Invalid(f"{what} {name!r} is not a valid consumer name")


def _query(request: pb.QueryUsageRequest) -> UsageQuery:
    group_by = []
    for dimension in request.group_by:
        if dimension == pb.DIMENSION_UNSPECIFIED:
            raise Invalid("group_by holds an unspecified dimension")
        group_by.append(pb.Dimension.Name(dimension).removeprefix("DIMENSION_"))
    bucket = request.bucket or pb.BUCKET_NONE
    filters = {
        name: getattr(request.filter, name)
        for name in ("consumer", "model", "rule", "status")
    }
    return UsageQuery.build(
        request.start,
        request.end,
        request.time_zone,
        (name.lower() for name in group_by),
        pb.Bucket.Name(bucket).removeprefix("BUCKET_").lower(),
        filters,
    )


def _rows(sums: UsageSums) -> list[pb.UsageRow]:
    zone = sums.query.zone
    rows = []
    for key in sorted(sums.rows):
        start, end, consumer, model, rule, status = key
        totals = sums.rows[key]
        rows.append(
            pb.UsageRow(
                bucket_start=start.astimezone(zone).isoformat(),
                bucket_end=end.astimezone(zone).isoformat(),
                consumer=consumer,
                model=model,
                rule=rule,
                status=status,
                **{name: totals.get(metric, 0) for metric, name in _METRIC_FIELDS},
            )
        )
    return rows


_METRIC_FIELDS = (
    (Metric.REQUESTS, "requests"),
    (Metric.REFUSED, "refused_requests"),
    (Metric.INPUT, "input_tokens"),
    (Metric.OUTPUT, "output_tokens"),
    (Metric.TOTAL, "total_tokens"),
    (Metric.CACHED, "cached_input_tokens"),
    (Metric.REASONING, "reasoning_tokens"),
    (Metric.COST_MICROS, "cost_micros"),
)


def _status(consumer: str, status: Status, now: datetime) -> pb.QuotaStatus:
    rule, window = status.rule, status.window
    zone = ZoneInfo(rule.zone)
    return pb.QuotaStatus(
        consumer=consumer,
        rule=rule.name,
        cycle=str(rule.cycle),
        time_zone=rule.zone,
        window_id=window.id,
        window_start=window.start.astimezone(zone).isoformat(),
        window_end=window.end.astimezone(zone).isoformat(),
        reset_in_seconds=window.seconds_until_end(now),
        configured_quota=rule.quota,
        quota=status.quota,
        quota_overridden=status.quota_override is not None,
        topup=status.topup,
        limit=status.limit,
        used=status.used,
        reserved=status.reserved,
        remaining=status.remaining,
        unit=_unit(rule),
    )


def _unit(rule: QuotaRule) -> str:
    """What a rule's counters count, in words for operators."""
    if rule.limit_type is LimitType.COST:
        return f"{rule.currency} micros"
    return "tokens" if rule.limit_type is LimitType.TOKEN else "requests"


def _audit(record: AuditRecord) -> pb.AuditEntry:
    return pb.AuditEntry(**asdict(record))
