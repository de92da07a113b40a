"""The rules command line: check, explain and hash-key, as an operator runs them."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from extproc import cli
from extproc.rules.loader import load_rules

GOOD = Path(__file__).parent / "good"
FIXTURES = Path(__file__).parent / "fixtures"
ALICE_LAPTOP = "2e15b40525c460e282cd07f31837a2dbf900fc53ddd43a8f4e84c0d4bb6c50c2"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Runs the command line; its exit status, stdout and stderr."""
    status = cli.main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_check_good_set(capsys: pytest.CaptureFixture[str]) -> None:
    """A good folder exits 0 with a one-line summary and nothing on stderr."""
    revision = load_rules(GOOD).revision

    expected = (0, f"ok: 3 consumers, 3 rules, revision {revision}\n", "")
    assert expected == run(capsys, "rules", "check", str(GOOD))


def test_check_bad_set(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A bad folder exits 1 with every problem, then a count, on stderr."""
    shutil.copy(FIXTURES / "malformed_hash.yaml", tmp_path)
    hint = "(the SHA-256 of the key, see `extproc hash-key`)"

    expected_err = (
        "malformed_hash.yaml:7: malformed key hash: expected 64 lowercase hex"
        f" digits {hint} at spec.keys[0].sha256\n"
        "malformed_hash.yaml:8: malformed key hash: expected 64 lowercase hex"
        f" digits {hint} at spec.keys[1].sha256\n"
        "2 problems: rules refused\n"
    )
    expected = (1, "", expected_err)
    assert expected == run(capsys, "rules", "check", str(tmp_path))


def test_explain_prints_rules_and_windows(capsys: pytest.CaptureFixture[str]) -> None:
    """Explain lists the consumer's rules in name order with windows in each zone."""
    expected_out = """\
consumer alice
  labels: cost-centre=cc-42, team=platform
  keys: laptop 2e15b40525c4, ci cf12abd6c179
rules, with their windows at 2026-03-29T01:30:00+00:00:
  everyone-monthly: 50000000 tokens per month in UTC; models: every model; \
failure policy: closed
    window 20260301: 2026-03-01T00:00:00+00:00 to 2026-04-01T00:00:00+00:00
  gpt4-weekly: 2000000 tokens per week in Europe/Berlin; models: gpt-4o*, o1-*; \
failure policy: open
    window 20260329: 2026-03-29T00:00:00+01:00 to 2026-04-05T00:00:00+02:00
  platform-daily: 100000 tokens per day in Asia/Shanghai; models: every model; \
failure policy: closed
    window 20260329: 2026-03-29T00:00:00+08:00 to 2026-03-30T00:00:00+08:00
"""
    argv = ("rules", "explain", str(GOOD), "--consumer", "alice")

    expected = (0, expected_out, "")
    assert expected == run(capsys, *argv, "--at", "2026-03-29T01:30:00Z")


def test_explain_consumer_without_rules(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A consumer that no rule binds is shown, and said to be bound by none."""
    shutil.copy(GOOD / "consumers.yaml", tmp_path)

    status, out, _ = run(capsys, "rules", "explain", str(tmp_path), "--consumer", "bob")

    expected = (0, "no rule binds this consumer")
    assert expected == (status, out.splitlines()[-1])


def test_explain_unknown_consumer(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown consumer name exits 1 and says so."""
    expected = (1, "", "unknown consumer 'mallory'\n")
    assert expected == run(
        capsys, "rules", "explain", str(GOOD), "--consumer", "mallory"
    )


def test_explain_refuses_an_instant_without_offset(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An instant without an offset is ambiguous: a usage error, exit status 2."""
    argv = ["rules", "explain", str(GOOD), "--consumer", "bob", "--at", "2026-03-01"]

    with pytest.raises(SystemExit) as exited:
        cli.main(argv)

    last_line = capsys.readouterr().err.splitlines()[-1]
    expected = (
        2,
        "extproc rules explain: error: argument --at: '2026-03-01' has no offset:"
        " add one, e.g. +08:00 or Z",
    )
    assert expected == (exited.value.code, last_line)


def test_hash_key_from_a_pipe(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A piped key, trailing newline and all, prints its hash and nothing else."""
    monkeypatch.setattr(sys, "stdin", io.StringIO("alice-laptop\n"))

    expected = (0, f"{ALICE_LAPTOP}\n", "")
    assert expected == run(capsys, "hash-key")


def test_hash_key_from_a_prompt(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a terminal the key is read by a no-echo prompt."""

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    prompts: list[str] = []

    def getpass(prompt: str) -> str:
        prompts.append(prompt)
        return "alice-laptop"

    monkeypatch.setattr(sys, "stdin", Terminal())
    monkeypatch.setattr("getpass.getpass", getpass)

    expected = (0, f"{ALICE_LAPTOP}\n", "", ["API key: "])
    assert expected == (*run(capsys, "hash-key"), prompts)


@pytest.mark.parametrize("given", ["", "\n", "two words\n", "one\ntwo\n"])
def test_hash_key_refuses_anything_but_one_key(
    given: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No key, or text with spaces or lines in it, exits 1 and echoes none of it."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(given))

    status, out, err = run(capsys, "hash-key")

    expected = (1, "", False)
    assert expected == (status, out, "two" in err)


def test_installed_command(tmp_path: Path) -> None:
    """The installed `extproc` script runs the same commands with exit statuses."""
    command = Path(sys.executable).parent / "extproc"
    hashed = subprocess.run(
        [command, "hash-key"], input="alice-laptop", capture_output=True, text=True
    )
    checked = subprocess.run(
        [command, "rules", "check", str(tmp_path / "absent")],
        capture_output=True,
        text=True,
    )

    expected = (0, f"{ALICE_LAPTOP}\n", 1)
    assert expected == (hashed.returncode, hashed.stdout, checked.returncode)


def test_explain_shows_cost_rules_and_rate_limits(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Cost rules read in money and rate limits are listed, not a crash."""
    folder = Path(__file__).parent / "explain_limits"

    status, out, _ = run(
        capsys, "rules", "explain", str(folder), "--consumer", "alice",
        "--at", "2026-03-29T01:30:00Z",
    )  # fmt: skip

    expected_tail = [
        "  spend: 12.5 USD per month in Asia/Shanghai; models: every model;"
        " failure policy: closed",
        "    window 20260301: 2026-03-01T00:00:00+08:00 to 2026-04-01T00:00:00+08:00",
        "rate limits:",
        "  inflight: 2 calls in flight; models: every model; mode: enforce",
        "  rpm: 60 requests per minute (sliding); models: every model; mode: enforce",
    ]
    assert (0, expected_tail) == (status, out.splitlines()[-5:])
