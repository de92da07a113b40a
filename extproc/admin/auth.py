"""Bearer tokens of the admin service, known only by their SHA-256 digests.

Tokens come from a file of `name:sha256-hex` lines (`name: sha256-hex` too, so
a flat YAML mapping works; `#` starts a comment) and from the environment
variable EXTPROC_ADMIN_TOKEN, a plain token named "env". The file is read again
when it changes, so tokens rotate without a restart (a broken edit keeps the
last good tokens). A presented token is hashed
and compared with every digest in constant time; its name is the audit's "who".
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from extproc.errors import ExtprocError

log = structlog.get_logger("extproc.admin")

ENV_TOKEN = "EXTPROC_ADMIN_TOKEN"
_DIGEST = re.compile(r"[0-9a-f]{64}")


class TokenFileError(ExtprocError):
    """The admin tokens file cannot be read as `name:sha256` lines."""


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_tokens(text: str, origin: str) -> dict[str, str]:
    """Digest -> name for every line of a tokens file; errors name the line."""
    tokens: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, _, digest = (part.strip().strip("'\"") for part in line.partition(":"))
        digest = digest.lower()
        if not name or not _DIGEST.fullmatch(digest):
            raise TokenFileError(
                f"{origin}:{number}: expected 'name:sha256-hex' "
                "(64 hex digits: the SHA-256 of the token, never the token)"
            )
        tokens[digest] = name
    return tokens


def bearer_token(metadata: Sequence[tuple[str, str | bytes]]) -> str | None:
    """The token of an `authorization: Bearer <token>` metadata entry, if any."""
    for key, value in metadata:
        if key.lower() != "authorization" or not isinstance(value, str):
            continue
        scheme, _, token = value.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return None


@dataclass
class TokenRegistry:
    """The valid admin tokens; `name_of` answers who holds a presented token."""

    path: Path | None = None
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    _file_tokens: dict[str, str] = field(default_factory=dict)
    _stamp: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        self._reload()  # a bad file stops the start, with its line named

    @property
    def empty(self) -> bool:
        return not self._all()

    def name_of(self, token: str | None) -> str | None:
        """The name of `token`, or None when it is missing or matches none."""
        if not token:
            return None
        presented = token_digest(token).encode()
        found = None
        # Every digest is compared, so the time taken says nothing of a match.
        for digest, name in self._all().items():
            if hmac.compare_digest(presented, digest.encode()):
                found = name
        return found

    def _all(self) -> dict[str, str]:
        try:
            self._reload()
        except (TokenFileError, OSError) as exc:
            # A broken edit of the file must not lock every operator out.
            log.warning("admin_tokens_not_reloaded", reason=str(exc))
        tokens = dict(self._file_tokens)
        env_token = self.environ.get(ENV_TOKEN, "")
        if env_token:
            tokens[token_digest(env_token)] = "env"
        return tokens

    def _reload(self) -> None:
        if self.path is None:
            return
        try:
            info = self.path.stat()
        except OSError as exc:
            raise TokenFileError(f"{self.path}: {exc.strerror}") from exc
        stamp = (info.st_mtime_ns, info.st_size)
        if stamp != self._stamp:
            text = self.path.read_text(encoding="utf-8")
            self._file_tokens = parse_tokens(text, str(self.path))
            self._stamp = stamp
