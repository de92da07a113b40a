"""LLM API shapes: which API a path speaks, how to read it, where usage is."""

from __future__ import annotations

from extproc.apis.base import ApiShape, LlmRequest, UsageExtractor
from extproc.apis.routing import Overrides, ShapeTable
from extproc.apis.usage import Usage

# The table the sidecar uses by default: added usage events are removed.
DEFAULT_TABLE = ShapeTable()


def shape_for_path(path: str, overrides: Overrides | None = None) -> ApiShape | None:
    """The API a request path speaks, or None for a path that is not an LLM call."""
    return DEFAULT_TABLE.for_path(path, overrides)


def shape_for_body(body: bytes) -> ApiShape | None:
    """The API a body plainly belongs to, for a path that named none."""
    return DEFAULT_TABLE.for_body(body)


__all__ = [
    "ApiShape",
    "LlmRequest",
    "Overrides",
    "ShapeTable",
    "Usage",
    "UsageExtractor",
    "shape_for_body",
    "shape_for_path",
]
