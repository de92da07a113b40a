"""`extproc admin ...` against a running admin service, as JSON and as tables."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from extproc.admin.commands import table
from tests.admin.conftest import TOKEN, Llm, admin_address, chat
from tests.harness.processes import REPO
from tests.harness.rules import quota, rule_set
from tests.harness.stack import Stack

KEY = "sk-team-a-test-key"


def run(
    stack: Stack, token_file: Path, *words: str
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    environ.pop("EXTPROC_ADMIN_TOKEN", None)
    command = [sys.executable, "-m", "extproc.admin", *words]
    command += ["--address", admin_address(stack), "--token-file", str(token_file)]
    return subprocess.run(
        command, capture_output=True, text=True, cwd=REPO, env=environ, timeout=30
    )


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    return path


@pytest.mark.e2e
def test_status_adjust_and_usage_as_json(
    quota_stack: Stack, llm: Llm, token_file: Path
) -> None:
    """The commands print the service's answers as JSON numbers."""
    quota_stack.use_rules(rule_set({"team-a": KEY}, {quota("daily", 900): ("team-a",)}))
    chat(llm(KEY), prompt_tokens=100, completion_tokens=20)
    quota_stack.settled()

    adjusted = run(
        quota_stack, token_file, "adjust", "team-a", "daily",
        "--add-tokens", "100", "--reason", "demo", "--json",
    )  # fmt: skip
    usage = run(
        quota_stack, token_file, "usage", "--group-by", "model", "--json",
        "--start", json.loads(adjusted.stdout)[0]["window_start"],
    )  # fmt: skip

    assert [(s["limit"], s["used"]) for s in json.loads(adjusted.stdout)] == [
        (1000, 120)
    ]
    assert [(r["model"], r["total_tokens"]) for r in json.loads(usage.stdout)] == [
        ("gpt-4o-mini", 120)
    ]


@pytest.mark.e2e
def test_a_wrong_token_fails_the_command(quota_stack: Stack, tmp_path: Path) -> None:
    """A refused token ends the command with status 1 and the gRPC code."""
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-token\n")

    done = run(quota_stack, wrong, "audit")

    assert (done.returncode, done.stderr.split(":")[:2]) == (
        1,
        ["error", " UNAUTHENTICATED"],
    )


def test_tables_align_columns_and_right_align_numbers() -> None:
    """Every column is as wide as its widest cell; numbers sit on the right."""
    rows = [{"rule": "daily", "used": 5}, {"rule": "monthly-all", "used": 12345}]

    assert table(rows, ("rule", "used", "empty")).splitlines() == [
        "RULE" + " " * 10 + "USED",
        "daily" + " " * 12 + "5",
        "monthly-all  12345",
    ]
