"""Who is calling: the API key a request carries, checked against key hashes.

Keys are never kept: a presented key is hashed (SHA-256) at once and only its
digest is compared and looked up.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from extproc.rules.model import Consumer, RuleSet

# Where clients put their key, in order of preference: OpenAI's bearer token,
# Anthropic's x-api-key, Azure OpenAI's api-key and Google's x-goog-api-key.
KEY_HEADERS = ("authorization", "x-api-key", "api-key", "x-goog-api-key")

# The header that tells the upstream (and Envoy's access log) who called; a
# client-sent value is always replaced by the verified consumer.
CONSUMER_HEADER = "x-consumer-id"

# Removed before forwarding: the consumer's key must not reach the provider.
# Envoy's route configuration adds the provider's own credentials upstream.
STRIPPED_HEADERS = (*KEY_HEADERS, CONSUMER_HEADER)


def hash_key(key: str) -> str:
    """The SHA-256 hex digest under which a key is stored in the rules."""
    return hashlib.sha256(key.encode()).hexdigest()


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The API key the request carries, or None when it carries none."""
    authorization = headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    for name in KEY_HEADERS[1:]:
        value = headers.get(name, "").strip()
        if value:
            return value
    return None


def identify(headers: Mapping[str, str], rules: RuleSet) -> Consumer | None:
    """The consumer whose key the request carries, or None if there is none."""
    key = presented_key(headers)
    if key is None:
        return None
    return rules.consumer_for_key_hash(hash_key(key))
