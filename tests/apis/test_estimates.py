"""Calls whose usage is missing or cut short are charged a marked estimate."""

from __future__ import annotations

from extproc.apis import LlmRequest, Usage
from extproc.call import Call, final_usage
from tests.apis.cases import CASES, Case, feed_all
from tests.harness.stack import empty_rules

BY_NAME = {case.fixture: case for case in CASES}


def settled_usage(case: Case, body: bytes, prompt_tokens: int = 40) -> Usage:
    """What a call is charged after its response body was `body`."""
    extractor = case.extractor()
    feed_all(extractor, [body])
    call = Call(rules=empty_rules(), status=200, extractor=extractor)
    call.request = LlmRequest("api", "m", True, prompt_tokens, 100)
    return final_usage(call)


def test_stream_without_usage_is_estimated_from_content() -> None:
    """A chat stream that never reports usage is charged prompt plus events seen."""
    case = BY_NAME["openai_chat_stream.sse"]
    body = b"\n\n".join(e for e in case.body.split(b"\n\n") if b'"choices":[]' not in e)
    assert Usage(40, 10, 50, estimated=True) == settled_usage(case, body)


def test_json_without_usage_is_estimated_from_its_size() -> None:
    """A JSON reply without usage is charged about one token per four bytes."""
    case = BY_NAME["openai_completions.json"]
    body = b'{"choices":[{"text":"' + b"x" * 80 + b'"}]}'
    usage = settled_usage(case, body)
    assert Usage(40, len(body) // 4, 40 + len(body) // 4, estimated=True) == usage


def test_embeddings_without_usage_charge_input_only() -> None:
    """An embedding reply without usage costs its estimated input, not its vector."""
    case = BY_NAME["openai_embeddings.json"]
    body = b'{"data":[{"embedding":[' + b"0.1," * 500 + b"0.1]}]}"
    assert Usage(40, 0, 40, estimated=True) == settled_usage(case, body)


def test_cut_anthropic_stream_keeps_exact_input() -> None:
    """A Messages stream cut before message_delta: exact input, estimated output."""
    case = BY_NAME["anthropic_messages_stream.sse"]
    body = case.body[: case.body.index(b"event: message_delta")]
    # Six content_block_delta events were seen: thinking, signature, four texts.
    expected = Usage(2520, 6, 2526, cached_input_tokens=2048, estimated=True)
    assert expected == settled_usage(case, body)


def test_cut_gemini_stream_charges_its_running_totals() -> None:
    """A Gemini stream cut before finishReason is charged its latest running total."""
    case = BY_NAME["gemini_stream.sse"]
    body = case.body.split(b"\r\n\r\n")[0] + b"\r\n\r\n"
    expected = Usage(1240, 309, 1549, 1024, 0, 289, estimated=True)
    assert expected == settled_usage(case, body)


def test_cut_responses_stream_is_estimated() -> None:
    """A Responses stream cut before its terminal event counts its deltas."""
    case = BY_NAME["openai_responses_stream.sse"]
    body = case.body[: case.body.index(b"event: response.output_text.done")]
    assert Usage(40, 4, 44, estimated=True) == settled_usage(case, body)


def test_failed_call_is_charged_nothing() -> None:
    """An upstream error releases the reservation: nothing is charged."""
    call = Call(rules=empty_rules(), status=500)
    assert Usage() == final_usage(call)
