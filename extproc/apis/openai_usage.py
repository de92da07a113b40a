"""The usage report of OpenAI's Chat Completions, Completions and Embeddings.

These three APIs, and the servers that copy them (Azure OpenAI, DashScope
compatible mode, vLLM, Ollama, DeepSeek and others), report one `usage` object:

- `prompt_tokens` INCLUDES cached input (`prompt_tokens_details.cached_tokens`;
  DeepSeek names it `prompt_cache_hit_tokens`). No cache-write count exists.
- `completion_tokens` INCLUDES reasoning (`completion_tokens_details.
  reasoning_tokens`). A few servers count reasoning outside it; their
  `total_tokens` then equals prompt + completion + reasoning, and that total
  is what tells them apart.
- Embeddings report `prompt_tokens` and `total_tokens` only: no output.

A JSON reply carries `usage` at its top level. A stream carries it only when
asked with `stream_options.include_usage`, in a last event whose `choices` list
is empty; the sidecar asks for it, and by default removes that event again
when the client had not asked (see extproc.apis.stripping).
"""

from __future__ import annotations

import json
import re
from typing import Any

from extproc.apis.base import LlmRequest, UsageExtractor, is_event_stream
from extproc.apis.decoding import reading_encoding
from extproc.apis.json_capture import JsonUsage
from extproc.apis.sse import SseEvent, SseReader
from extproc.apis.stripping import EventFilter
from extproc.apis.usage import Usage, count, normalized

# A pending event with a non-empty `choices` list is content, never the report.
_CONTENT_CHOICES = re.compile(rb'"choices"\s*:\s*\[\s*[^\s\]]')


def usage_from_openai(report: dict[str, Any]) -> Usage | None:
    """Normalize an OpenAI `usage` object; None when it holds no token counts."""
    if not isinstance(report.get("prompt_tokens"), int):
        return None
    prompt = count(report, "prompt_tokens")
    completion = count(report, "completion_tokens")
    details = report.get("completion_tokens_details")
    reasoning = count(details, "reasoning_tokens")
    total = count(report, "total_tokens")
    if reasoning and total == prompt + completion + reasoning:
        completion += reasoning  # this server counts reasoning outside
    prompt_details = report.get("prompt_tokens_details")
    cached = count(prompt_details, "cached_tokens") or count(
        report, "prompt_cache_hit_tokens"
    )
    return normalized(
        prompt, completion, cached=cached, reasoning=reasoning, total=total
    )


def ask_for_usage(payload: dict[str, Any]) -> bytes | None:
    """A body that asks for usage in the stream, or None if it already does."""
    options = payload.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage") is True:
        return None
    options = dict(options) if isinstance(options, dict) else {}
    options["include_usage"] = True
    rewritten = dict(payload, stream_options=options)
    return json.dumps(rewritten, separators=(",", ":")).encode()


def openai_extractor(
    content_type: str,
    content_encoding: str,
    strip_usage_event: bool,
    bytes_per_output_token: int = 4,
) -> UsageExtractor:
    """The extractor for a reply of the OpenAI family, JSON or streamed."""
    if not is_event_stream(content_type):
        return reading_encoding(
            content_encoding,
            lambda _: JsonUsage(usage_from_openai, bytes_per_output_token),
        )
    return reading_encoding(
        content_encoding,
        lambda may_rewrite: OpenAiStreamExtractor(strip_usage_event and may_rewrite),
    )


class UsageReportingShape:
    """Chat Completions and Completions: streams whose usage the sidecar adds."""

    def __init__(self, strip_usage_event: bool = True) -> None:
        # Remove the usage event the sidecar asked for on the client's behalf.
        self.strip_usage_event = strip_usage_event

    def extractor(
        self, request: LlmRequest, content_type: str, *, content_encoding: str = ""
    ) -> UsageExtractor:
        strip = self.strip_usage_event and not request.client_wants_usage
        return openai_extractor(content_type, content_encoding, strip)


class OpenAiStreamExtractor:
    """Reads a stream's usage event; removes it when `strip_usage_event`."""

    def __init__(self, strip_usage_event: bool = False) -> None:
        self._reader = SseReader()
        self._filter = EventFilter(_could_be_report) if strip_usage_event else None
        self._usage: Usage | None = None
        self._content_events = 0

    def feed(self, chunk: bytes) -> bytes | None:
        events = self._reader.feed(chunk)
        drops = [self._read(event) for event in events]
        if self._filter is None:
            return None
        return self._filter.forward(chunk, self._reader, events, drops)

    def usage(self) -> Usage | None:
        return self._usage

    def delivered_output_tokens(self) -> int:
        return self._content_events

    def _read(self, event: SseEvent) -> bool:
        """Take in one event; True when it is the usage-only report event."""
        data = event.data
        if b'"usage"' not in data or _usage_is_null(data):
            if data != b"[DONE]":
                # Servers send about one token per content event.
                self._content_events += 1
            return False
        try:
            payload = json.loads(data)
        except ValueError:
            return False
        report = payload.get("usage") if isinstance(payload, dict) else None
        if not isinstance(report, dict):
            return False
        self._usage = usage_from_openai(report) or self._usage
        return bool(payload.get("choices") == [])


def _usage_is_null(data: bytes) -> bool:
    return b'"usage":null' in data or b'"usage": null' in data


def _could_be_report(pending: bytes | bytearray) -> bool:
    """False once a pending event's first bytes show it is not the report."""
    return b"[DONE]" not in pending and _CONTENT_CHOICES.search(pending) is None
