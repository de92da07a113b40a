"""An incremental reader of server-sent events (the WHATWG event-stream format).

Chunks may split the stream anywhere: inside a line, between `\\r` and `\\n`, or
inside a UTF-8 character (lines are decoded only once complete). Bytes are scanned
once; a line longer than `max_line_bytes` is dropped whole, so memory stays bounded
however long the stream runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_LINE_END = re.compile(rb"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class SseEvent:
    event: str  # "message" unless an `event:` field named it
    data: bytes  # the data lines joined by "\n"


class SseReader:
    def __init__(self, max_line_bytes: int = 1 << 20) -> None:
        self._max_line = max_line_bytes
        self._partial: list[bytes] = []  # pieces of the line not yet ended
        self._partial_size = 0
        self._overflow = False  # the current line grew past the bound: drop it
        self._skip_lf = False  # the last chunk ended in CR; an LF now is its pair
        self._event = ""
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[SseEvent]:
        """Consume a chunk; return the events it completed, in order."""
        if self._skip_lf and chunk:
            self._skip_lf = False
            if chunk.startswith(b"\n"):
                chunk = chunk[1:]
        if not chunk:
            return []

        pieces = _LINE_END.split(chunk)
        if len(pieces) == 1:
            self._extend_partial(chunk)
            return []

        events: list[SseEvent] = []
        self._extend_partial(pieces[0])
        self._end_partial(events)
        for line in pieces[1:-1]:
            self._line(line, events)
        self._extend_partial(pieces[-1])
        self._skip_lf = chunk.endswith(b"\r")
        return events

    def _end_partial(self, events: list[SseEvent]) -> None:
        line = b"".join(self._partial)
        overflow = self._overflow
        self._partial, self._partial_size, self._overflow = [], 0, False
        if not overflow:
            self._line(line, events)

    def _extend_partial(self, piece: bytes) -> None:
        if not piece or self._overflow:
            return
        if self._partial_size + len(piece) > self._max_line:
            self._partial, self._partial_size, self._overflow = [], 0, True
            return
        self._partial.append(piece)
        self._partial_size += len(piece)

    def _line(self, line: bytes, events: list[SseEvent]) -> None:
        if not line:
            if self._data:
                data = b"\n".join(self._data)
                events.append(SseEvent(self._event or "message", data))
            self._event, self._data = "", []
            return
        if line.startswith(b":"):
            return  # a comment, often a keep-alive
        name, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")
