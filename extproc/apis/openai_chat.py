"""OpenAI Chat Completions (and the servers that copy its wire format).

Usage arrives in the `usage` object of a JSON reply, or, when streaming, in the
last event, which providers send only when asked with
`stream_options.include_usage`; the reader adds that option when it is missing.
`prompt_tokens` includes cached ones (`prompt_tokens_details.cached_tokens`), and
`completion_tokens` includes reasoning ones
(`completion_tokens_details.reasoning_tokens`).
"""

from __future__ import annotations

import json
from typing import Any

from extproc.apis.base import LlmRequest, UsageExtractor
from extproc.apis.estimate import MESSAGE_OVERHEAD_TOKENS, content_tokens
from extproc.apis.json_capture import JsonFieldCapture
from extproc.apis.sse import SseReader
from extproc.apis.usage import Usage
from extproc.errors import BadRequest

# Every reply is framed by a few tokens of its own, in tokens.
REPLY_PRIMING_TOKENS = 3


def load_json_object(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object, or BadRequest naming what is wrong."""
    if not body.strip():
        raise BadRequest("the request body is empty; expected a JSON object")
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise BadRequest("the request body must be a JSON object")
    return parsed


def _positive_int(payload: dict[str, Any], *names: str) -> int | None:
    for name in names:
        value = payload.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise BadRequest(f"'{name}' must be a positive integer", param=name)
        return value
    return None


def usage_from_openai(report: dict[str, Any]) -> Usage | None:
    """Normalize an OpenAI `usage` object; None when it holds no token counts."""
    prompt = report.get("prompt_tokens")
    completion = report.get("completion_tokens", 0)
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    total = report.get("total_tokens")
    prompt_details = report.get("prompt_tokens_details") or {}
    completion_details = report.get("completion_tokens_details") or {}
    return Usage(
        input_tokens=prompt,
        output_tokens=completion,
        total_tokens=total if isinstance(total, int) else prompt + completion,
        cached_input_tokens=int(prompt_details.get("cached_tokens") or 0),
        reasoning_tokens=int(completion_details.get("reasoning_tokens") or 0),
    )


class ChatCompletions:
    name = "openai.chat_completions"

    def read_request(
        self, path: str, body: bytes, default_output_tokens: int
    ) -> LlmRequest:
        payload = load_json_object(body)
        model = payload.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest("'model' is required and must be a string", param="model")
        messages = payload.get("messages")
        if not isinstance(messages, list):
            raise BadRequest("'messages' must be a list", param="messages")

        stream = payload.get("stream") is True
        asked = _positive_int(payload, "max_completion_tokens", "max_tokens")
        choices = _positive_int(payload, "n") or 1
        return LlmRequest(
            api=self.name,
            model=model,
            stream=stream,
            prompt_tokens=self._prompt_tokens(payload, messages),
            output_allowance=(asked or default_output_tokens) * choices,
            forwarded_body=self._ask_for_usage(payload) if stream else None,
        )

    def extractor(self, request: LlmRequest, content_type: str) -> UsageExtractor:
        if content_type.startswith("text/event-stream"):
            return ChatStreamExtractor()
        return ChatJsonExtractor()

    @staticmethod
    def _prompt_tokens(payload: dict[str, Any], messages: list[Any]) -> int:
        tokens = REPLY_PRIMING_TOKENS
        for message in messages:
            tokens += MESSAGE_OVERHEAD_TOKENS
            if isinstance(message, dict):
                tokens += content_tokens(message.get("content"))
        tools = payload.get("tools")
        if tools:
            tokens += content_tokens(json.dumps(tools))
        return tokens

    @staticmethod
    def _ask_for_usage(payload: dict[str, Any]) -> bytes | None:
        """A body that asks for usage in the stream, or None if it already does."""
        options = payload.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage") is True:
            return None
        options = dict(options) if isinstance(options, dict) else {}
        options["include_usage"] = True
        rewritten = dict(payload, stream_options=options)
        return json.dumps(rewritten, separators=(",", ":")).encode()


class ChatJsonExtractor:
    def __init__(self) -> None:
        self._capture = JsonFieldCapture("usage")
        self._bytes = 0

    def feed(self, chunk: bytes) -> bytes | None:
        self._bytes += len(chunk)
        self._capture.feed(chunk)
        return None

    def usage(self) -> Usage | None:
        value = self._capture.value
        return usage_from_openai(value) if value is not None else None

    def delivered_output_tokens(self) -> int:
        # Roughly four bytes of JSON per token of content; a cut JSON body is
        # rare (the provider sends it whole), so a coarse figure is enough.
        return self._bytes // 4


class ChatStreamExtractor:
    def __init__(self) -> None:
        self._reader = SseReader()
        self._usage: Usage | None = None
        self._content_events = 0

    def feed(self, chunk: bytes) -> bytes | None:
        for event in self._reader.feed(chunk):
            data = event.data
            if b'"usage"' in data and not _usage_is_null(data):
                self._read_usage(data)
            elif data != b"[DONE]":
                # Providers send about one token per content event.
                self._content_events += 1
        return None

    def usage(self) -> Usage | None:
        return self._usage

    def delivered_output_tokens(self) -> int:
        return self._content_events

    def _read_usage(self, data: bytes) -> None:
        try:
            payload = json.loads(data)
        except ValueError:
            return
        report = payload.get("usage") if isinstance(payload, dict) else None
        if isinstance(report, dict):
            self._usage = usage_from_openai(report) or self._usage


def _usage_is_null(data: bytes) -> bool:
    return b'"usage":null' in data or b'"usage": null' in data
