"""Token estimates for admission, made before the provider has said anything.

No tokenizer ships with the sidecar (their vocabularies would be fetched at run
time), so text is approximated: about four ASCII characters per token, and one
token per other character, which is close for CJK text and errs high elsewhere.
The settlement always replaces the estimate with the provider's own numbers.
"""

from __future__ import annotations

import json
from typing import Any

# Fixed cost of one chat message's framing (role, separators), in tokens.
MESSAGE_OVERHEAD_TOKENS = 4
# A part that is not text (an image, audio): a flat allowance, in tokens.
NON_TEXT_PART_TOKENS = 256


def text_tokens(text: str) -> int:
    """Approximate tokens in `text`."""
    ascii_chars = len(text.encode("ascii", "ignore"))
    other_chars = len(text) - ascii_chars
    return -(-ascii_chars // 4) + other_chars


def content_tokens(content: Any) -> int:
    """Approximate tokens of a message's content: a string or a list of parts."""
    if isinstance(content, str):
        return text_tokens(content)
    if isinstance(content, list):
        return sum(_part_tokens(part) for part in content)
    if content is None:
        return 0
    return text_tokens(str(content))


def _part_tokens(part: Any) -> int:
    if isinstance(part, str):
        return text_tokens(part)
    if isinstance(part, dict):
        text = part.get("text")
        if isinstance(text, str):
            return text_tokens(text)
    return NON_TEXT_PART_TOKENS


def conversation_tokens(turns: list[Any], *fields: str, tools: Any = None) -> int:
    """Approximate tokens of a conversation and its tool definitions.

    Each turn (a message, a Gemini content, a Responses item) costs its framing
    plus the first of `fields` that it holds.
    """
    tokens = 0
    for turn in turns:
        tokens += MESSAGE_OVERHEAD_TOKENS
        if isinstance(turn, dict):
            text = next((turn[name] for name in fields if turn.get(name)), None)
            tokens += content_tokens(text)
    if tools:
        tokens += content_tokens(json.dumps(tools))
    return tokens
