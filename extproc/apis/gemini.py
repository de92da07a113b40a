"""Google Gemini `:generateContent` and `:streamGenerateContent`.

The model is named by the path: `/v1beta/models/{model}:generateContent` (and
Vertex AI's `.../publishers/google/models/{model}:...`). A stream comes as
server-sent events with `?alt=sse`, and as one JSON array of replies without
it; either way each reply may carry `usageMetadata`, repeating running totals
that are merged field by field, the latest winning, and never summed.

`usageMetadata` fields and how they map:

- `promptTokenCount` INCLUDES `cachedContentTokenCount` (cached input);
  `toolUsePromptTokenCount` (tool results fed back) is input counted beside it;
- `candidatesTokenCount` EXCLUDES `thoughtsTokenCount` (reasoning): output is
  candidates + thoughts;
- `totalTokenCount` is the sum of all of them.

A reply that never shows a `finishReason` was cut short: its running totals are
charged, marked estimated.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from extproc.apis.base import LlmRequest, UsageExtractor
from extproc.apis.decoding import reading_encoding
from extproc.apis.estimate import content_tokens, conversation_tokens
from extproc.apis.json_capture import JsonFieldCapture
from extproc.apis.payload import load_json_object
from extproc.apis.usage import Usage, count, normalized
from extproc.errors import BadRequest

_MODEL = re.compile(r"/models/([^/:?]+):(?:stream)?[gG]enerateContent")
_FIELDS = (
    "promptTokenCount",
    "cachedContentTokenCount",
    "toolUsePromptTokenCount",
    "candidatesTokenCount",
    "thoughtsTokenCount",
    "totalTokenCount",
)
_FINISHED = b'"finishReason"'


def model_from_path(path: str) -> str | None:
    found = _MODEL.search(path.split("?", 1)[0])
    return unquote(found.group(1)) if found else None


def usage_from_gemini(report: dict[str, Any], estimated: bool = False) -> Usage:
    """Normalize `usageMetadata` (reasoning moved into output)."""
    thoughts = count(report, "thoughtsTokenCount")
    return normalized(
        count(report, "promptTokenCount") + count(report, "toolUsePromptTokenCount"),
        count(report, "candidatesTokenCount") + thoughts,
        cached=count(report, "cachedContentTokenCount"),
        reasoning=thoughts,
        total=count(report, "totalTokenCount"),
        estimated=estimated,
    )


def _either(mapping: Any, camel: str, snake: str) -> Any:
    """A field the API accepts in camelCase and in snake_case."""
    if not isinstance(mapping, dict):
        return None
    value = mapping.get(camel)
    return mapping.get(snake) if value is None else value


def _positive(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadRequest(f"'{name}' must be a positive integer", param=name)
    return value


class GenerateContent:
    name = "gemini.generate_content"

    def read_request(
        self, path: str, body: bytes, default_output_tokens: int
    ) -> LlmRequest:
        payload = load_json_object(body)
        contents = payload.get("contents")
        if not isinstance(contents, list):
            raise BadRequest("'contents' must be a list", param="contents")
        model = model_from_path(path) or payload.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest("the path must name a model: /models/{model}:...")
        return LlmRequest(
            api=self.name,
            model=model.removeprefix("models/"),
            stream=":streamGenerateContent" in path.split("?", 1)[0],
            prompt_tokens=self._prompt_tokens(payload, contents),
            output_allowance=self._allowance(payload, default_output_tokens),
        )

    def extractor(
        self, request: LlmRequest, content_type: str, *, content_encoding: str = ""
    ) -> UsageExtractor:
        # One reader serves JSON, the JSON array and server-sent events alike:
        # usage objects are picked from the bytes whatever frames them.
        return reading_encoding(content_encoding, lambda _: GeminiExtractor())

    @staticmethod
    def _prompt_tokens(payload: dict[str, Any], contents: list[Any]) -> int:
        system = _either(payload, "systemInstruction", "system_instruction")
        tools = payload.get("tools")
        return content_tokens(_either(system, "parts", "parts")) + (
            conversation_tokens(contents, "parts", tools=tools)
        )

    @staticmethod
    def _allowance(payload: dict[str, Any], default_output_tokens: int) -> int:
        config = _either(payload, "generationConfig", "generation_config")
        asked = _positive(
            _either(config, "maxOutputTokens", "max_output_tokens"), "maxOutputTokens"
        )
        candidates = _positive(
            _either(config, "candidateCount", "candidate_count"), "candidateCount"
        )
        thinking = _either(config, "thinkingConfig", "thinking_config")
        budget = _either(thinking, "thinkingBudget", "thinking_budget")
        # Thinking may be counted apart from the output limit: allow it too.
        extra = budget if isinstance(budget, int) and budget > 0 else 0
        return (asked or default_output_tokens) * (candidates or 1) + extra


class GeminiExtractor:
    def __init__(self) -> None:
        self._capture = JsonFieldCapture("usageMetadata", on_value=self._merge)
        self._report: dict[str, int] = {}
        self._finished = False
        self._tail = b""  # the end of the last chunk, for a split `finishReason`
        self._bytes = 0

    def feed(self, chunk: bytes) -> bytes | None:
        self._bytes += len(chunk)
        self._capture.feed(chunk)
        if not self._finished:
            window = self._tail + chunk
            self._finished = _FINISHED in window
            self._tail = window[-(len(_FINISHED) - 1) :]
        return None

    def usage(self) -> Usage | None:
        if not self._report:
            return None
        return usage_from_gemini(self._report, estimated=not self._finished)

    def delivered_output_tokens(self) -> int:
        if self._report:
            return usage_from_gemini(self._report).output_tokens
        return self._bytes // 4  # about four bytes of JSON per token

    def _merge(self, report: dict[str, Any]) -> None:
        for name in _FIELDS:
            value = report.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                self._report[name] = value
