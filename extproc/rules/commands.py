"""Command line tools for rules: check a folder, explain a consumer, hash a key.

`add_rules_commands` adds `rules check`, `rules explain` and `hash-key` to an
argparse subparsers object; each sets `handler`, a function of the parsed
arguments that returns the exit status.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from extproc.errors import RulesError
from extproc.identity import hash_key
from extproc.rules.loader import load_rules
from extproc.rules.model import (
    Consumer,
    LimitType,
    QuotaRule,
    RateLimit,
    RateMeasure,
    RuleSet,
)
from extproc.windows import window_at


def quota_text(rule: QuotaRule) -> str:
    """A rule's quota with its unit: tokens, requests, or an amount of money."""
    if rule.limit_type is LimitType.COST:
        return f"{rule.quota / 1_000_000:.6f}".rstrip("0").rstrip(".") + (
            f" {rule.currency}"
        )
    unit = "tokens" if rule.limit_type is LimitType.TOKEN else "requests"
    return f"{rule.quota} {unit}"


def add_rules_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Adds `rules check`, `rules explain` and `hash-key` to `subparsers`."""
    rules = subparsers.add_parser("rules", help="check or explain a rules folder")
    actions = rules.add_subparsers(dest="rules_command", required=True)

    check = actions.add_parser(
        "check", help="validate a rules folder; exit 1 naming every problem"
    )
    check.add_argument("folder", type=Path, help="folder of *.yaml / *.yml files")
    check.set_defaults(handler=run_check)

    explain = actions.add_parser(
        "explain", help="show the rules binding a consumer and their windows"
    )
    explain.add_argument("folder", type=Path, help="folder of *.yaml / *.yml files")
    explain.add_argument("--consumer", required=True, help="consumer name")
    explain.add_argument(
        "--at",
        type=parse_instant,
        default=None,
        metavar="ISO-INSTANT",
        help="instant with an offset, e.g. 2026-03-01T09:00:00+08:00 (default: now)",
    )
    explain.set_defaults(handler=run_explain)

    hash_key = subparsers.add_parser(
        "hash-key",
        help="print the SHA-256 of an API key read from stdin or a prompt",
    )
    hash_key.set_defaults(handler=run_hash_key)


def parse_instant(text: str) -> datetime:
    """An ISO 8601 instant; one without an offset is ambiguous and refused."""
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 instant: '{text}'") from None
    if instant.tzinfo is None:
        message = f"'{text}' has no offset: add one, e.g. +08:00 or Z"
        raise argparse.ArgumentTypeError(message)
    return instant


def load_or_report(folder: Path) -> RuleSet | None:
    """The rules of `folder`, or None after writing every problem to stderr."""
    try:
        return load_rules(folder)
    except RulesError as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        count = len(error.problems)
        print(
            f"{count} problem{'' if count == 1 else 's'}: rules refused",
            file=sys.stderr,
        )
        return None


def run_check(args: argparse.Namespace) -> int:
    rule_set = load_or_report(args.folder)
    if rule_set is None:
        return 1
    print(
        f"ok: {len(rule_set.consumers)} consumers, {len(rule_set.rules)} rules,"
        f" revision {rule_set.revision}"
    )
    return 0


def run_explain(args: argparse.Namespace) -> int:
    rule_set = load_or_report(args.folder)
    if rule_set is None:
        return 1
    consumer = rule_set.consumers.get(args.consumer)
    if consumer is None:
        print(f"unknown consumer '{args.consumer}'", file=sys.stderr)
        return 1
    instant: datetime = args.at or datetime.now(UTC)
    print(describe_consumer(consumer))
    bound = rule_set.rules_by_consumer.get(consumer.name, ())
    limits = rule_set.rate_limits_by_consumer.get(consumer.name, ())
    if not bound and not limits:
        print("no rule binds this consumer")
        return 0
    if bound:
        print(f"rules, with their windows at {instant.isoformat()}:")
        for rule in bound:
            print(describe_rule(rule, instant))
    if limits:
        print("rate limits:")
        for limit in limits:
            print(describe_rate_limit(limit))
    return 0


def describe_consumer(consumer: Consumer) -> str:
    labels = ", ".join(f"{k}={v}" for k, v in sorted(consumer.labels.items()))
    # A 12-digit prefix tells keys apart; the hash is no secret, but it is long.
    keys = ", ".join(
        f"{key.name or '(unnamed)'} {key.sha256[:12]}" for key in consumer.keys
    )
    return f"consumer {consumer.name}\n  labels: {labels or '(none)'}\n  keys: {keys}"


def describe_rule(rule: QuotaRule, instant: datetime) -> str:
    """A rule in one line, and the window holding `instant` in the rule's zone."""
    window = window_at(instant, rule.cycle, rule.zone, rule.week_start)
    zone = ZoneInfo(rule.zone)
    models = ", ".join(rule.models) if rule.models else "every model"
    return (
        f"  {rule.name}: {quota_text(rule)} per {rule.cycle}"
        f" in {rule.zone}; models: {models}; failure policy: {rule.failure_policy}\n"
        f"    window {window.id}: {window.start.astimezone(zone).isoformat()}"
        f" to {window.end.astimezone(zone).isoformat()}"
    )


def describe_rate_limit(limit: RateLimit) -> str:
    """A rate limit in one line: how much of what, per how long, for which models."""
    models = ", ".join(limit.models) if limit.models else "every model"
    if limit.measure is RateMeasure.CONCURRENT:
        pace = f"{limit.amount} calls in flight"
    else:
        assert limit.unit is not None
        pace = f"{limit.amount} {limit.measure} per {limit.unit} (sliding)"
    return f"  {limit.name}: {pace}; models: {models}; mode: {limit.mode}"


def run_hash_key(args: argparse.Namespace) -> int:
    """Prints the hash of a key; the key itself is never written anywhere."""
    # getpass prompts on the terminal without echo; a pipe is read as it is.
    typed = sys.stdin.isatty()
    key = (getpass.getpass("API key: ") if typed else sys.stdin.read()).strip()
    if not key:
        print("no key given on stdin", file=sys.stderr)
        return 1
    if any(character.isspace() for character in key):
        print("a key is one word on one line; got more", file=sys.stderr)
        return 1
    print(hash_key(key))
    return 0
