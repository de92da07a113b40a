"""Replies to streamed response-body chunks."""

from __future__ import annotations

from extproc import replies


def test_unchanged_chunk_gets_an_empty_response_body_reply() -> None:
    """A chunk passed on unchanged is answered with an empty body reply."""
    reply = replies.continue_response_body()
    expected = ("response_body", False)
    assert expected == (
        reply.WhichOneof("response"),
        reply.response_body.response.HasField("body_mutation"),
    )


def test_replaced_chunk_carries_its_new_bytes() -> None:
    """A replaced chunk's reply holds the new bytes; the shared reply stays empty."""
    replaced = replies.continue_response_body(b"data: x\n\n")
    expected = (b"data: x\n\n", False)
    assert expected == (
        replaced.response_body.response.body_mutation.body,
        replies.continue_response_body().response_body.response.HasField(
            "body_mutation"
        ),
    )
