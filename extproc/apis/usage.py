"""The normalized usage record that every provider's report is turned into.

Providers disagree on what their counts include: Anthropic's `input_tokens`
leaves out cached and cache-written input, Gemini reports reasoning outside its
candidate count, OpenAI counts both inside. Each API module converts its report
with `normalized`, so that every `Usage` means the same thing.
"""

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


def normalized(
    input_tokens: int,
    output_tokens: int,
    *,
    cached: int = 0,
    cache_write: int = 0,
    reasoning: int = 0,
    total: int | None = None,
    estimated: bool = False,
) -> Usage:
    """A `Usage` from counts that already follow its inclusion rules.

    `total` is the provider's own total when it reports one; it is kept when it
    is larger than input plus output (a provider may bill tokens it does not
    break down), and otherwise the sum is charged.
    """
    summed = input_tokens + output_tokens
    return Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=max(summed, total or 0),
        cached_input_tokens=cached,
        cache_write_input_tokens=cache_write,
        reasoning_tokens=reasoning,
        estimated=estimated,
    )


def count(report: object, name: str) -> int:
    """A non-negative integer field of a usage report; 0 when absent or not one."""
    if not isinstance(report, dict):
        return 0
    value = report.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return 0
    return value
