"""The normalized usage record that every provider's report is turned into."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens of one call, as the provider reported them.

    `input_tokens` includes cached and cache-write input; `output_tokens` includes
    reasoning tokens; `total_tokens` is what quotas are charged.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_input_tokens: int = 0
    reasoning_tokens: int = 0
    estimated: bool = False  # True when the provider reported nothing usable
