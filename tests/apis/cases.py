"""The recorded-shape fixtures and the exact usage each one must yield."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from extproc.apis import LlmRequest, ShapeTable, Usage, UsageExtractor

FIXTURES = Path(__file__).parent / "fixtures"
SSE = "text/event-stream; charset=utf-8"
JSON = "application/json; charset=UTF-8"


@dataclass(frozen=True)
class Case:
    fixture: str
    path: str
    content_type: str
    expected: Usage

    @property
    def body(self) -> bytes:
        return (FIXTURES / self.fixture).read_bytes()

    def extractor(
        self, client_wants_usage: bool = True, content_encoding: str = ""
    ) -> UsageExtractor:
        """A fresh extractor of the fixture's API, as the sidecar would make it."""
        shape = ShapeTable().for_path(self.path)
        assert shape is not None
        request = LlmRequest(
            shape.name, "m", True, 1, 1, client_wants_usage=client_wants_usage
        )
        return shape.extractor(
            request, self.content_type, content_encoding=content_encoding
        )


def usage(
    input_tokens: int,
    output_tokens: int,
    cached: int = 0,
    cache_write: int = 0,
    reasoning: int = 0,
) -> Usage:
    return Usage(
        input_tokens,
        output_tokens,
        input_tokens + output_tokens,
        cached,
        cache_write,
        reasoning,
    )


GEMINI = usage(1240, 85 + 289, cached=1024, reasoning=289)
RESPONSES = usage(2143, 612, cached=2048, reasoning=512)

CASES = (
    Case(
        "openai_chat.json", "/v1/chat/completions", JSON, usage(1117, 546, 1024, 0, 448)
    ),
    Case("openai_chat_stream.sse", "/v1/chat/completions", SSE, usage(2006, 9, 1920)),
    Case("openai_completions.json", "/v1/completions", JSON, usage(5, 7)),
    Case("openai_completions_stream.sse", "/v1/completions", SSE, usage(5, 5)),
    Case("openai_embeddings.json", "/v1/embeddings", JSON, usage(8, 0)),
    Case("openai_responses.json", "/v1/responses", JSON, RESPONSES),
    Case("openai_responses_stream.sse", "/v1/responses", SSE, RESPONSES),
    Case("openai_responses_incomplete_stream.sse", "/v1/responses", SSE, usage(37, 16)),
    Case("anthropic_messages.json", "/v1/messages", JSON, usage(3050, 300, 2000, 1000)),
    Case("anthropic_messages_stream.sse", "/v1/messages", SSE, usage(2520, 89, 2048)),
    Case(
        "anthropic_messages_server_tools_stream.sse",
        "/v1/messages",
        SSE,
        usage(10682, 510),
    ),
    Case(
        "gemini.json", "/v1beta/models/gemini-2.5-flash:generateContent", JSON, GEMINI
    ),
    Case(
        "gemini_stream.sse",
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
        SSE,
        GEMINI,
    ),
    Case(
        "gemini_stream_array.json",
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
        JSON,
        GEMINI,
    ),
    Case(
        "dashscope_chat_stream.sse",
        "/compatible-mode/v1/chat/completions",
        SSE,
        usage(22, 103, reasoning=98),
    ),
    Case("ollama_chat_stream.sse", "/v1/chat/completions", SSE, usage(26, 3)),
    Case(
        "azure_chat.json",
        "/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21",
        JSON,
        usage(19, 8),
    ),
    Case("deepseek_chat.json", "/chat/completions", JSON, usage(640, 120, 576, 0, 100)),
    Case(
        "reasoning_outside_chat.json",
        "/v1/chat/completions",
        JSON,
        usage(14, 301, cached=6, reasoning=300),
    ),
)

# Streams that carry a usage-only event the sidecar may have asked for.
STRIPPABLE = tuple(
    case
    for case in CASES
    if case.content_type == SSE
    and case.path.endswith(("/chat/completions", "/v1/completions"))
)


def feed_all(extractor: UsageExtractor, chunks: list[bytes]) -> bytes:
    """Feed every chunk; the bytes the client would receive."""
    forwarded = []
    for chunk in chunks:
        replacement = extractor.feed(chunk)
        forwarded.append(chunk if replacement is None else replacement)
    return b"".join(forwarded)
