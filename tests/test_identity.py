"""Reading and checking the API key a request carries."""

from __future__ import annotations

import hashlib

import pytest

from extproc.identity import hash_key, identify, presented_key
from tests.harness.rules import quota, rule_set

RULES = rule_set({"alice": "sk-alice"}, {quota("daily", 10): ("alice",)})


def test_hash_is_sha256_hex() -> None:
    """Keys are stored as the lowercase hex SHA-256 of their UTF-8 bytes."""
    assert hashlib.sha256(b"sk-alice").hexdigest() == hash_key("sk-alice")


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"authorization": "Bearer sk-alice"}, "sk-alice"),
        ({"authorization": "bearer   sk-alice  "}, "sk-alice"),
        ({"x-api-key": "sk-alice"}, "sk-alice"),
        ({"api-key": " sk-alice "}, "sk-alice"),
        ({"x-goog-api-key": "sk-alice"}, "sk-alice"),
        ({"authorization": "Basic abc", "x-api-key": "sk-alice"}, "sk-alice"),
        ({"authorization": "Bearer "}, None),
        ({}, None),
    ],
)
def test_presented_key(headers: dict[str, str], expected: str | None) -> None:
    """A bearer token wins; the providers' key headers are read next; blanks
    are none."""
    assert expected == presented_key(headers)


def test_identify_known_and_unknown_keys() -> None:
    """A known key names its consumer; an unknown or missing key names nobody."""
    known = identify({"authorization": "Bearer sk-alice"}, RULES)

    assert "alice" == (known.name if known else None)
    assert None is identify({"x-api-key": "sk-mallory"}, RULES)
    assert None is identify({}, RULES)
