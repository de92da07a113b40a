"""OpenAI Responses API (`/responses`), JSON and streamed.

Usage sits in the response object: at the top of a JSON reply, and in a stream
inside the terminal event: `response.completed`, or `response.incomplete` when
`max_output_tokens` or a content filter stopped the reply early (still billed).
Its fields:

- `input_tokens` INCLUDES cached input (`input_tokens_details.cached_tokens`);
- `output_tokens` INCLUDES reasoning (`output_tokens_details.reasoning_tokens`);
- `total_tokens` is their sum.

The output limit is `max_output_tokens`, and covers reasoning too. Earlier
events (`response.created`, `response.in_progress`) carry `"usage": null`, and
content events no usage at all: only events that name a non-null usage are
parsed.
"""

from __future__ import annotations

import json
from typing import Any

from extproc.apis.base import LlmRequest, UsageExtractor, is_event_stream
from extproc.apis.decoding import reading_encoding
from extproc.apis.estimate import content_tokens, conversation_tokens
from extproc.apis.json_capture import JsonUsage
from extproc.apis.payload import load_json_object, openai_model, positive_int
from extproc.apis.sse import SseReader
from extproc.apis.usage import Usage, count, normalized
from extproc.errors import BadRequest


def usage_from_responses(report: dict[str, Any]) -> Usage | None:
    """Normalize a Responses `usage` object; None when it holds no counts."""
    if not isinstance(report.get("input_tokens"), int):
        return None
    return normalized(
        count(report, "input_tokens"),
        count(report, "output_tokens"),
        cached=count(report.get("input_tokens_details"), "cached_tokens"),
        reasoning=count(report.get("output_tokens_details"), "reasoning_tokens"),
        total=count(report, "total_tokens"),
    )


class Responses:
    name = "openai.responses"

    def read_request(
        self, path: str, body: bytes, default_output_tokens: int
    ) -> LlmRequest:
        payload = load_json_object(body)
        model = openai_model(payload, path)
        asked = positive_int(payload, "max_output_tokens")
        return LlmRequest(
            api=self.name,
            model=model,
            stream=payload.get("stream") is True,
            prompt_tokens=self._prompt_tokens(payload),
            output_allowance=asked or default_output_tokens,
        )

    def extractor(
        self, request: LlmRequest, content_type: str, *, content_encoding: str = ""
    ) -> UsageExtractor:
        if is_event_stream(content_type):
            return reading_encoding(content_encoding, lambda _: ResponsesStream())
        return reading_encoding(
            content_encoding, lambda _: JsonUsage(usage_from_responses)
        )

    @staticmethod
    def _prompt_tokens(payload: dict[str, Any]) -> int:
        items = payload.get("input")
        if isinstance(items, str):
            items = [{"content": items}]
        if not isinstance(items, list):
            raise BadRequest("'input' must be a string or a list", param="input")
        tools = payload.get("tools")
        return content_tokens(payload.get("instructions")) + conversation_tokens(
            items, "content", "output", tools=tools
        )


class ResponsesStream:
    def __init__(self) -> None:
        self._reader = SseReader()
        self._usage: Usage | None = None
        self._deltas = 0

    def feed(self, chunk: bytes) -> bytes | None:
        for event in self._reader.feed(chunk):
            data = event.data
            if b'"usage"' in data and b'"usage":null' not in data:
                self._read_usage(data)
            elif b'.delta"' in data:
                self._deltas += 1  # about one token per delta event
        return None

    def usage(self) -> Usage | None:
        return self._usage

    def delivered_output_tokens(self) -> int:
        return self._deltas

    def _read_usage(self, data: bytes) -> None:
        try:
            payload = json.loads(data)
        except ValueError:
            return
        response = payload.get("response") if isinstance(payload, dict) else None
        report = response.get("usage") if isinstance(response, dict) else None
        if isinstance(report, dict):
            self._usage = usage_from_responses(report) or self._usage
