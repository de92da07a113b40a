"""What a call costs, in integer micro-units (1e-6) of a price's currency.

Prices are per million tokens, so one token at price P costs exactly P
micro-units: the arithmetic is Decimal products summed, rounded once (half up)
to a whole micro-unit, with no float anywhere.

The normalized Usage counts cached and cache-write input inside
`input_tokens` and reasoning inside `output_tokens`; each part is priced once,
at its own price, and only the rest at the plain input or output price.
Tokens a provider bills beyond input plus output (a larger `total_tokens`)
have no price of their own and are not priced.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from extproc.apis.usage import Usage
from extproc.rules.model import Price

MICROS_PER_UNIT = 1_000_000


def cost_micros(usage: Usage, price: Price) -> int:
    """The price of one call's usage, in micro-units of `price.currency`."""
    cached = min(usage.cached_input_tokens, usage.input_tokens)
    written = min(usage.cache_write_input_tokens, usage.input_tokens - cached)
    fresh = usage.input_tokens - cached - written
    reasoning = min(usage.reasoning_tokens, usage.output_tokens)
    plain = usage.output_tokens - reasoning
    total = (
        fresh * price.input
        + cached * price.cached_input
        + written * price.cache_write
        + plain * price.output
        + reasoning * price.reasoning
    )
    return _whole(total)


def estimate_micros(prompt_tokens: int, output_tokens: int, price: Price) -> int:
    """An upper bound for admission: no cache discount, and output at the
    dearer of the plain and the reasoning price."""
    output_price = max(price.output, price.reasoning)
    return _whole(prompt_tokens * price.input + output_tokens * output_price)


def micros_text(micros: int) -> str:
    """Micro-units as a decimal amount: 1234500 -> '1.2345'."""
    amount = Decimal(micros).scaleb(-6).normalize()
    return f"{amount:f}"


def _whole(micros: Decimal) -> int:
    return int(micros.to_integral_value(rounding=ROUND_HALF_UP))
