"""Cost arithmetic on every provider's usage shape, against hand-computed values."""

from __future__ import annotations

from decimal import Decimal

from extproc.apis.anthropic_messages import usage_from_anthropic
from extproc.apis.gemini import usage_from_gemini
from extproc.apis.openai_usage import usage_from_openai
from extproc.apis.usage import Usage
from extproc.cost import cost_micros, estimate_micros, micros_text
from extproc.rules.model import Price


def price(
    input: str,
    output: str,
    cached: str | None = None,
    written: str | None = None,
    reasoning: str | None = None,
) -> Price:
    return Price(
        "p",
        "USD",
        Decimal(input),
        Decimal(output),
        Decimal(cached or input),
        Decimal(written or input),
        Decimal(reasoning or output),
    )


OPENAI_REPORT = {
    "prompt_tokens": 2000,
    "completion_tokens": 800,
    "total_tokens": 2800,
    "prompt_tokens_details": {"cached_tokens": 1500},
    "completion_tokens_details": {"reasoning_tokens": 500},
}


def test_openai_cached_and_reasoning() -> None:
    """OpenAI: 500 fresh at 2.50, 1500 cached at 1.25, 300 output and 500
    reasoning at 10.00 per million: 1250 + 1875 + 3000 + 5000 micro-units."""
    usage = usage_from_openai(OPENAI_REPORT)
    assert usage is not None

    assert 11_125 == cost_micros(usage, price("2.50", "10.00", cached="1.25"))


def test_openai_reasoning_with_its_own_price() -> None:
    """Reasoning priced apart is charged once, at its price, not also as output:
    1250 + 1875 + 300 x 10 + 500 x 20 micro-units."""
    usage = usage_from_openai(OPENAI_REPORT)
    assert usage is not None
    dear_thinking = price("2.50", "10.00", cached="1.25", reasoning="20")

    assert 16_125 == cost_micros(usage, dear_thinking)


def test_anthropic_cache_read_and_write() -> None:
    """Anthropic: 100 fresh at 3, 2000 read at 0.30, 1000 written at 3.75 and 400
    output at 15: 300 + 600 + 3750 + 6000 micro-units."""
    usage = usage_from_anthropic(
        {
            "input_tokens": 100,
            "cache_read_input_tokens": 2000,
            "cache_creation_input_tokens": 1000,
            "output_tokens": 400,
        }
    )
    claude = price("3", "15", cached="0.30", written="3.75")

    assert 10_650 == cost_micros(usage, claude)


def test_gemini_thoughts_and_rounding() -> None:
    """Gemini: 400 fresh at 1.25, 600 cached at 0.3125, 200 candidates and 300
    thoughts at 10: 500 + 187.5 + 2000 + 3000, rounded half up once to 5688."""
    usage = usage_from_gemini(
        {
            "promptTokenCount": 1000,
            "cachedContentTokenCount": 600,
            "candidatesTokenCount": 200,
            "thoughtsTokenCount": 300,
            "totalTokenCount": 1500,
        }
    )

    assert 5_688 == cost_micros(usage, price("1.25", "10", cached="0.3125"))


def test_no_float_drift() -> None:
    """Three million tokens at 0.1 per million cost exactly 300,000 micro-units,
    where float arithmetic (3e6 * 0.1) would not come out exact."""
    usage = Usage(input_tokens=3_000_000, total_tokens=3_000_000)

    assert 300_000 == cost_micros(usage, price("0.1", "0.1"))


def test_estimate_takes_the_dearer_output_price() -> None:
    """Admission prices its output allowance at max(output, reasoning), with no
    cache discount: 1000 x 2.50 + 500 x 20 micro-units."""
    assert 12_500 == estimate_micros(1000, 500, price("2.50", "10", reasoning="20"))


def test_micros_text() -> None:
    """Micro-units print as a plain decimal amount of the currency."""
    assert ["11.125", "0.000001", "3"] == [
        micros_text(11_125_000),
        micros_text(1),
        micros_text(3_000_000),
    ]
