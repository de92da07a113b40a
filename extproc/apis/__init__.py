"""LLM API shapes: which API a path speaks, how to read it, where usage is."""

from __future__ import annotations

from extproc.apis.base import ApiShape, LlmRequest, UsageExtractor
from extproc.apis.openai_chat import ChatCompletions
from extproc.apis.usage import Usage

_CHAT = ChatCompletions()

# Path suffixes (query string removed) and the API each one speaks.
_ROUTES: tuple[tuple[str, ApiShape], ...] = (("/chat/completions", _CHAT),)


def shape_for_path(path: str) -> ApiShape | None:
    """The API a request path speaks, or None for a path that is not an LLM call."""
    bare = path.split("?", 1)[0].rstrip("/")
    for suffix, shape in _ROUTES:
        if bare.endswith(suffix):
            return shape
    return None


__all__ = ["ApiShape", "LlmRequest", "Usage", "UsageExtractor", "shape_for_path"]
