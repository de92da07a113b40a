"""Which API a request speaks: by path suffix first, by body shape as a fallback.

The default table maps path suffixes (query string removed) to shapes; the
longest matching suffix wins, so `/chat/completions` is not taken for the
legacy `/completions`. OpenAI-compatible servers need no entry of their own:
DashScope's `/compatible-mode/v1/chat/completions`, vLLM's and Ollama's
`/v1/chat/completions`, and Azure's `/openai/deployments/{d}/chat/completions`
all end like OpenAI's paths.

`overrides` (suffix to shape name, or to None for "not an LLM call") are
matched before the defaults; they are for code that embeds the sidecar, as the
shipped server routes by the defaults alone.

When no suffix matches, a body that plainly is one of these APIs is recognized
by its fields (`shape_for_body`), so a provider behind an unusual path is still
metered.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar

from extproc.apis.anthropic_messages import Messages
from extproc.apis.base import ApiShape
from extproc.apis.gemini import GenerateContent
from extproc.apis.openai_chat import ChatCompletions
from extproc.apis.openai_completions import Completions
from extproc.apis.openai_embeddings import Embeddings
from extproc.apis.openai_responses import Responses

Overrides = Mapping[str, str | None]
V = TypeVar("V")

# Fields that only Anthropic's Messages requests carry, beside messages/model.
_ANTHROPIC_ONLY = ("system", "stop_sequences", "top_k", "anthropic_version")
# Fields that only Responses requests carry, beside input/model.
_RESPONSES_ONLY = (
    "instructions",
    "max_output_tokens",
    "previous_response_id",
    "reasoning",
    "text",
    "tools",
    "include",
    "store",
)


class ShapeTable:
    """Every API shape, by name and by path suffix."""

    def __init__(self, strip_usage_event: bool = True) -> None:
        shapes: list[ApiShape] = [
            ChatCompletions(strip_usage_event),
            Completions(strip_usage_event),
            Embeddings(),
            Responses(),
            Messages(),
            GenerateContent(),
        ]
        self.by_name: dict[str, ApiShape] = {shape.name: shape for shape in shapes}
        routes = {
            "/chat/completions": "openai.chat_completions",
            "/completions": "openai.completions",
            "/embeddings": "openai.embeddings",
            "/responses": "openai.responses",
            "/v1/messages": "anthropic.messages",
            ":generateContent": "gemini.generate_content",
            ":streamGenerateContent": "gemini.generate_content",
        }
        self.routes = _longest_first(routes)

    def for_path(
        self, path: str, overrides: Overrides | None = None
    ) -> ApiShape | None:
        """The API a request path speaks, or None for a path that is not one."""
        bare = path.split("?", 1)[0].rstrip("/")
        for suffix, name in _longest_first(overrides or {}):
            if bare.endswith(suffix):
                return self.by_name[name] if name else None
        for suffix, name in self.routes:
            if bare.endswith(suffix):
                return self.by_name[name]
        return None

    def for_body(self, body: bytes) -> ApiShape | None:
        """The API a request body plainly belongs to, or None."""
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(payload, dict):
            return None
        name = _name_for_payload(payload)
        return self.by_name[name] if name else None


def _name_for_payload(payload: dict[str, Any]) -> str | None:
    if isinstance(payload.get("contents"), list):
        return "gemini.generate_content"
    if not isinstance(payload.get("model"), str):
        return None
    if isinstance(payload.get("messages"), list):
        if any(name in payload for name in _ANTHROPIC_ONLY):
            return "anthropic.messages"
        return "openai.chat_completions"
    if "prompt" in payload:
        return "openai.completions"
    if "input" in payload:
        responses = any(name in payload for name in _RESPONSES_ONLY)
        items = payload["input"]
        if responses or (isinstance(items, list) and _has_items(items)):
            return "openai.responses"
        return "openai.embeddings"
    return None


def _has_items(items: list[Any]) -> bool:
    """True when a list holds message items (Responses), not texts (Embeddings)."""
    return any(isinstance(item, dict) for item in items)


def _longest_first(table: Mapping[str, V]) -> list[tuple[str, V]]:
    return sorted(table.items(), key=lambda item: len(item[0]), reverse=True)
