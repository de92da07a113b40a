"""The `extproc` command line: one subcommand per task.

Every subcommand's parser sets `handler`, a function of the parsed arguments
that returns the exit status.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from zoneinfo import ZoneInfoNotFoundError

from extproc import logs
from extproc.admin.commands import add_admin_commands
from extproc.errors import RulesError
from extproc.rules.commands import add_rules_commands
from extproc.settings import Settings, SettingsError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="extproc",
        description="Per-consumer token quotas for LLM traffic behind Envoy.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_serve(commands)
    add_rules_commands(commands)
    add_admin_commands(commands)
    return parser


def _add_serve(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser(
        "serve",
        help="run the ext_proc sidecar",
        description="Run the ext_proc sidecar. Flags override EXTPROC_* variables.",
    )
    serve.add_argument("--rules", type=Path, help="rules folder (EXTPROC_RULES_DIR)")
    serve.add_argument("--redis-url", help="Redis URL (REDIS_URL)")
    serve.add_argument("--host", help="ext_proc listen address (EXTPROC_HOST)")
    serve.add_argument("--port", type=int, help="ext_proc port (EXTPROC_PORT)")
    serve.add_argument("--admin-port", type=int, help="admin port (EXTPROC_ADMIN_PORT)")
    serve.add_argument("--log-format", choices=["auto", "json", "console"])
    serve.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    from extproc.server import serve_forever

    try:
        settings = Settings.from_env(
            rules_dir=args.rules,
            redis_url=args.redis_url,
            host=args.host,
            port=args.port,
            admin_port=args.admin_port,
            log_format=args.log_format,
        )
    except SettingsError as exc:
        print(f"extproc: bad setting: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_format, settings.log_level)
    try:
        asyncio.run(serve_forever(settings))
    except RulesError as exc:
        print(f"extproc: rules refused in {settings.rules_dir}:", file=sys.stderr)
        print(exc.render(), file=sys.stderr)
        return 2
    except (RuntimeError, OSError) as exc:
        # A port already taken, most often: gRPC and the metrics server say so.
        print(f"extproc: cannot serve: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one subcommand and returns its exit status."""
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except BrokenPipeError:
        # The reader left (`| head`): nothing more to say, and nowhere to say it.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (ValueError, ZoneInfoNotFoundError) as exc:
        # Arguments that parse but make no sense (a zone that does not exist,
        # a number out of range): one line, not a traceback.
        print(f"extproc {args.command}: error: {exc}", file=sys.stderr)
        return 2


def run() -> None:
    """The console script's entry point."""
    sys.exit(main())
