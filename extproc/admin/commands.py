"""`extproc admin ...`: the admin API from a terminal, as tables or as JSON.

`add_admin_commands(subparsers)` adds the `admin` command to a parser; every
leaf parser sets `handler`, which takes the parsed arguments and returns the exit
status. The token comes from --token-file (the plain token on its first line)
or the EXTPROC_ADMIN_TOKEN variable.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import grpc
from google.protobuf.message import Message

from extproc.admin.auth import ENV_TOKEN
from extproc.admin.v1 import admin_pb2 as pb
from extproc.admin.v1 import admin_pb2_grpc as pb_grpc
from extproc.aggregates import BUCKET

DEFAULT_ADDRESS = "127.0.0.1:50052"

STATUS_COLUMNS = (
    "consumer", "rule", "cycle", "unit", "window_start", "window_end", "limit",
    "quota", "quota_overridden", "topup", "used", "reserved", "remaining",
    "reset_in_seconds",
)  # fmt: skip
USAGE_COLUMNS = (
    "bucket_start", "consumer", "model", "rule", "status", "requests",
    "refused_requests", "input_tokens", "output_tokens", "total_tokens",
    "cached_input_tokens", "reasoning_tokens", "cost_micros",
)  # fmt: skip
AUDIT_COLUMNS = (
    "time", "who", "action", "consumer", "rule", "window_id", "before", "after",
    "reason",
)  # fmt: skip

Handler = Callable[[argparse.Namespace], int]


def add_admin_commands(subparsers: Any) -> argparse.ArgumentParser:
    """Add `admin status|adjust|reset|usage|audit` to `subparsers`."""
    admin: argparse.ArgumentParser = subparsers.add_parser(
        "admin", help="quota status, edits and usage"
    )
    commands = admin.add_subparsers(dest="admin_command", required=True)
    common = _common_options()

    status = _command(commands, "status", "a consumer's quota windows", common)
    status.add_argument("consumer")
    status.add_argument("--rule", default="", help="one rule (default: all)")
    status.set_defaults(handler=_status)

    adjust = _command(commands, "adjust", "edit the current window", common)
    adjust.add_argument("consumer")
    adjust.add_argument("rule")
    change = adjust.add_mutually_exclusive_group(required=True)
    change.add_argument("--set-quota", type=int, help="this window's quota, tokens")
    change.add_argument("--add-tokens", type=int, help="top-up for this window")
    adjust.add_argument("--reason", required=True, help="why, for the audit")
    adjust.set_defaults(handler=_adjust)

    reset = _command(commands, "reset", "clear the current window's use", common)
    reset.add_argument("consumer")
    reset.add_argument("--rule", default="", help="one rule (default: all)")
    reset.add_argument("--reason", required=True, help="why, for the audit")
    reset.set_defaults(handler=_reset)

    _add_usage(commands, common)

    audit = _command(commands, "audit", "the latest edits, newest first", common)
    audit.add_argument("--consumer", default="", help="one consumer (default: all)")
    audit.add_argument("--limit", type=int, default=50)
    audit.set_defaults(handler=_audit)
    return admin


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--address", default=DEFAULT_ADDRESS, help="admin host:port")
    common.add_argument(
        "--token-file", type=Path, help=f"file holding the token (or {ENV_TOKEN})"
    )
    common.add_argument("--json", action="store_true", help="print JSON")
    common.add_argument("--timeout", type=float, default=10.0, help="seconds")
    return common


def _command(
    commands: Any, name: str, text: str, common: argparse.ArgumentParser
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=text, description=text, parents=[common]
    )
    return parser


def _add_usage(commands: Any, common: argparse.ArgumentParser) -> None:
    usage = _command(commands, "usage", "usage totals over a time range", common)
    usage.add_argument("--start", help="RFC 3339 (default: today's start in --zone)")
    usage.add_argument("--end", help="RFC 3339 (default: the next quarter hour)")
    usage.add_argument("--zone", default="UTC", help="IANA zone of the buckets")
    usage.add_argument(
        "--group-by", default="", help="comma list of consumer, model, rule, status"
    )
    usage.add_argument(
        "--bucket", default="none", choices=("none", "hour", "day", "week", "month")
    )
    for name in ("consumer", "model", "rule", "status"):
        usage.add_argument(f"--{name}", default="", help=f"only this {name}")
    usage.set_defaults(handler=_usage)


def _status(args: argparse.Namespace) -> int:
    request = pb.GetQuotaStatusRequest(consumer=args.consumer, rule=args.rule)
    reply = _call(args, "GetQuotaStatus", request)
    return _show(args, reply.statuses, STATUS_COLUMNS)


def _adjust(args: argparse.Namespace) -> int:
    request = pb.AdjustQuotaRequest(
        consumer=args.consumer, rule=args.rule, reason=args.reason
    )
    if args.set_quota is not None:
        request.set_quota = args.set_quota
    else:
        request.add_tokens = args.add_tokens
    reply = _call(args, "AdjustQuota", request)
    return _show(args, [reply.status], STATUS_COLUMNS)


def _reset(args: argparse.Namespace) -> int:
    request = pb.ResetQuotaRequest(
        consumer=args.consumer, rule=args.rule, reason=args.reason
    )
    reply = _call(args, "ResetQuota", request)
    return _show(args, reply.statuses, STATUS_COLUMNS)


def _usage(args: argparse.Namespace) -> int:
    zone = ZoneInfo(args.zone)
    now = datetime.now(UTC)
    start = args.start or _today_start(now, zone).isoformat()
    end = args.end or _next_quarter(now).isoformat()
    request = pb.QueryUsageRequest(
        start=start,
        end=end,
        time_zone=args.zone,
        group_by=[_enum("DIMENSION_", name) for name in _names(args.group_by)],
        bucket=_enum("BUCKET_", args.bucket),
        filter=pb.UsageFilter(
            consumer=args.consumer, model=args.model, rule=args.rule, status=args.status
        ),
    )
    reply = _call(args, "QueryUsage", request)
    return _show(args, reply.rows, USAGE_COLUMNS)


def _audit(args: argparse.Namespace) -> int:
    request = pb.ListAuditRequest(consumer=args.consumer, limit=args.limit)
    reply = _call(args, "ListAudit", request)
    return _show(args, reply.entries, AUDIT_COLUMNS)


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _enum(prefix: str, name: str) -> str:
    """The proto enum value name for a word of the command line."""
    enum = pb.Dimension if prefix == "DIMENSION_" else pb.Bucket
    try:
        return str(enum.Name(enum.Value(prefix + name.upper())))
    except ValueError:
        raise SystemExit(
            f"error: unknown {prefix.lower().rstrip('_')} {name!r}"
        ) from None


def _today_start(now: datetime, zone: ZoneInfo) -> datetime:
    local = now.astimezone(zone)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def _next_quarter(now: datetime) -> datetime:
    seconds = BUCKET.total_seconds()
    return datetime.fromtimestamp((now.timestamp() // seconds + 1) * seconds, UTC)


def _call(args: argparse.Namespace, method: str, request: Message) -> Any:
    """One unary call with the bearer token; a gRPC error ends the command."""
    metadata = (("authorization", f"Bearer {_token(args)}"),)
    # The admin address is named explicitly: no proxy setting may redirect it.
    options = (("grpc.enable_http_proxy", 0),)
    with grpc.insecure_channel(args.address, options=options) as channel:
        stub = pb_grpc.AdminStub(channel)  # type: ignore[no-untyped-call]
        try:
            return getattr(stub, method)(
                request, metadata=metadata, timeout=args.timeout
            )
        except grpc.RpcError as exc:
            code = exc.code().name if hasattr(exc, "code") else "UNKNOWN"
            details = exc.details() if hasattr(exc, "details") else str(exc)
            raise SystemExit(f"error: {code}: {details}") from None


def _token(args: argparse.Namespace) -> str:
    if args.token_file is not None:
        try:
            lines = args.token_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise SystemExit(f"error: cannot read the token file: {exc}") from None
        token = lines[0].strip() if lines else ""
    else:
        token = os.environ.get(ENV_TOKEN, "")
    if not token:
        raise SystemExit(f"error: no admin token: pass --token-file or set {ENV_TOKEN}")
    if not (token.isascii() and token.isprintable()):
        # gRPC refuses such a header value outright, and badly.
        raise SystemExit("error: the admin token must be printable ASCII")
    return token


def _show(
    args: argparse.Namespace, messages: Sequence[Message], columns: Sequence[str]
) -> int:
    records = [as_dict(message) for message in messages]
    if args.json:
        print(json.dumps(records, indent=2))
    else:
        print(table(records, columns))
    return 0


def as_dict(message: Message) -> dict[str, Any]:
    """A message's fields by proto name, numbers kept as numbers."""
    found: dict[str, Any] = {}
    for field in message.DESCRIPTOR.fields:
        value = getattr(message, field.name)
        if isinstance(value, Message):
            value = as_dict(value)
        elif field.message_type is not None:  # a repeated message field
            value = [as_dict(v) for v in value]
        found[field.name] = value
    return found


def table(records: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """Aligned columns; numbers to the right. Columns empty in every row are
    left out (a usage query shows only the dimensions it grouped by)."""
    shown = [c for c in columns if any(r.get(c) not in ("", None) for r in records)]
    shown = shown or list(columns)
    cells = [[str(r.get(c, "")) for c in shown] for r in records]
    widths = [
        max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(shown)
    ]
    numeric = [all(isinstance(r.get(c), int) for r in records) for c in shown]
    lines = []
    for row in [[c.upper() for c in shown], *cells]:
        parts = [
            value.rjust(width) if right else value.ljust(width)
            for value, width, right in zip(row, widths, numeric, strict=True)
        ]
        lines.append("  ".join(parts))
    return "\n".join(line.rstrip() for line in lines)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m extproc.admin status ...`: the admin commands alone."""
    parser = argparse.ArgumentParser(prog="extproc")
    add_admin_commands(parser.add_subparsers(dest="command", required=True))
    words = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(["admin", *words])
    handler: Handler = args.handler
    return handler(args)
