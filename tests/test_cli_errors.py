"""Command-line mistakes end in one clear line, never a traceback."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from extproc import cli


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """The command's exit status and stderr, as a shell would see them."""
    try:
        status = cli.main(list(argv))
    except SystemExit as exited:
        status = exited.code if isinstance(exited.code, int) else 1
        print(exited.code, file=sys.stderr)
    return status, capsys.readouterr().err.strip()


def test_unknown_zone_in_a_usage_query(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A zone that does not exist is named in one line, exit status 2."""
    monkeypatch.setenv("EXTPROC_ADMIN_TOKEN", "t")

    status, err = run(capsys, "admin", "usage", "--zone", "Mars/Base")

    assert (2, "extproc admin: error: 'No time zone found with key Mars/Base'") == (
        status,
        err,
    )


def test_missing_token_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A token file that cannot be read is named, not thrown."""
    missing = tmp_path / "nope"

    status, err = run(capsys, "admin", "status", "bob", "--token-file", str(missing))

    assert 1 == status
    assert err.startswith("error: cannot read the token file:")


def test_token_that_is_no_header_value(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token gRPC could not send as a header is refused before sending."""
    monkeypatch.setenv("EXTPROC_ADMIN_TOKEN", "tok\u00e9n")

    status, err = run(capsys, "admin", "status", "bob")

    assert (1, "error: the admin token must be printable ASCII") == (status, err)
