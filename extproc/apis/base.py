"""What the sidecar needs from each LLM API: read a request, extract usage."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from extproc.apis.usage import Usage


@dataclass(frozen=True, slots=True)
class LlmRequest:
    """What admission needs to know about one call, read from its request body."""

    api: str
    model: str
    stream: bool
    prompt_tokens: int  # estimated, see extproc.apis.estimate
    output_allowance: int  # tokens the call may produce: asked for, or the default
    forwarded_body: bytes | None = None  # a rewritten body to send upstream instead
    # False when the sidecar added the stream's usage report on its own: the
    # client did not ask for it and may not expect the extra event.
    client_wants_usage: bool = True

    @property
    def estimated_tokens(self) -> int:
        return self.prompt_tokens + self.output_allowance


class UsageExtractor(Protocol):
    """Reads usage from a response body fed chunk by chunk, never re-scanning."""

    def feed(self, chunk: bytes) -> bytes | None:
        """Consume a chunk; return bytes to forward instead of it, or None."""

    def usage(self) -> Usage | None:
        """The provider's report, once it has been seen."""

    def delivered_output_tokens(self) -> int:
        """Output tokens seen so far, estimated: what a cut stream is charged."""


class ApiShape(Protocol):
    """One LLM API: how its requests read and where its usage is reported."""

    name: str

    def read_request(
        self, path: str, body: bytes, default_output_tokens: int
    ) -> LlmRequest:
        """Parse a request body; raise BadRequest when it cannot be read."""

    def extractor(
        self, request: LlmRequest, content_type: str, *, content_encoding: str = ""
    ) -> UsageExtractor:
        """A fresh usage extractor for this call's response body."""


def is_event_stream(content_type: str) -> bool:
    """True for a `text/event-stream` content type, parameters and case aside."""
    return content_type.split(";", 1)[0].strip().lower() == "text/event-stream"
