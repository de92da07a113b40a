"""The incremental event-stream reader and the usage-event filter."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from extproc.apis.openai_usage import OpenAiStreamExtractor
from extproc.apis.sse import SseEvent, SseReader

STREAM = (
    b": keep-alive\r\n\r\n"
    b'event: message_start\r\ndata: {"a":1}\r\n\r\n'
    b"data: first\rdata: second\r\r"
    b"id: 7\nretry: 10\ndata:no-space\n\n"
    b"data: \xe4\xbd\xa0\xe5\xa5\xbd\n\n"
    b"data: cut at the end"
)
EXPECTED = [
    ("message_start", b'{"a":1}'),
    ("message", b"first\nsecond"),
    ("message", b"no-space"),
    ("message", "你好".encode()),
]


def read(chunks: list[bytes]) -> list[tuple[str, bytes]]:
    reader = SseReader()
    return [(e.event, e.data) for chunk in chunks for e in reader.feed(chunk)]


def test_reader_follows_the_event_stream_format() -> None:
    """Comments, event names, CR/LF/CRLF ends and multi-line data read per spec."""
    assert EXPECTED == read([STREAM])


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=30))
def test_reader_is_split_proof(cuts: list[int]) -> None:
    """Any chunking, even between CR and LF or inside UTF-8, reads the same events."""
    edges = [0, *sorted(cuts), len(STREAM)]
    chunks = [STREAM[a:b] for a, b in itertools.pairwise(edges)]
    assert EXPECTED == read(chunks)


def test_event_end_points_past_its_blank_line() -> None:
    """An event's `end` is the offset just past the blank line that closed it."""
    chunk = b"data: x\n\ndata: y\r\n\r\n"
    assert [SseEvent("message", b"x", 9), SseEvent("message", b"y", 20)] == (
        SseReader().feed(chunk)
    )


def test_overlong_line_is_dropped_and_reading_goes_on() -> None:
    """A line past the bound is dropped whole; the next event still reads."""
    reader = SseReader(max_line_bytes=16)
    events = reader.feed(b"data: " + b"x" * 10)
    events += reader.feed(b"y" * 10 + b"\n\ndata: ok\n\n")
    assert [SseEvent("message", b"ok", 22)] == events


def test_content_is_forwarded_without_waiting_for_its_end() -> None:
    """A content event split in two goes out as soon as it shows it is content."""
    extractor = OpenAiStreamExtractor(strip_usage_event=True)
    head = b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"Hel'
    assert None is extractor.feed(head)
    assert None is extractor.feed(b'lo"}}]}\n\n')


def test_a_possible_usage_event_is_held_until_it_is_known() -> None:
    """Bytes that could open the usage event wait; the event is then dropped."""
    extractor = OpenAiStreamExtractor(strip_usage_event=True)
    assert b"" == extractor.feed(b'data: {"id":"c","choices":[')
    tail = b'],"usage":{"prompt_tokens":3,"completion_tokens":2}}\n\ndata: [DONE]\n\n'
    assert b"data: [DONE]\n\n" == extractor.feed(tail)
    usage = extractor.usage()
    assert usage is not None and 5 == usage.total_tokens


def test_keep_alive_comments_pass_at_once() -> None:
    """A comment block is forwarded as soon as its blank line arrives."""
    extractor = OpenAiStreamExtractor(strip_usage_event=True)
    assert b"" == extractor.feed(b": ping")
    assert b": ping\n\n" == extractor.feed(b"\n\n")
