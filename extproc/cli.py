"""The `extproc` command line: one subcommand per task."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

from extproc.rules.commands import add_rules_commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="extproc",
        description="Per-consumer token quotas for LLM traffic behind Envoy.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_rules_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one subcommand and returns its exit status."""
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)
