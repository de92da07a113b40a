"""An incremental reader of server-sent events (the WHATWG event-stream format).

Chunks may split the stream anywhere: inside a line, between `\\r` and `\\n`, or
inside a UTF-8 character (lines are decoded only once complete). Bytes are scanned
once; a line longer than `max_line_bytes` is dropped whole, so memory stays bounded
however long the stream runs.

Each event also tells where, in the chunk that completed it, its closing blank
line ends, so that a caller can forward or withhold the event's exact bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_LINE_END = re.compile(rb"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class SseEvent:
    event: str  # "message" unless an `event:` field named it
    data: bytes  # the data lines joined by "\n"
    end: int = 0  # offset in the completing chunk just past the blank line


class SseReader:
    def __init__(self, max_line_bytes: int = 1 << 20) -> None:
        self._max_line = max_line_bytes
        self._partial: list[bytes] = []  # pieces of the line not yet ended
        self._partial_size = 0
        self._overflow = False  # the current line grew past the bound: drop it
        self._skip_lf = False  # the last chunk ended in CR; an LF now is its pair
        self._event = ""
        self._data: list[bytes] = []
        # Offset in the last chunk just past its last blank line (an event
        # boundary, with or without data), or -1 when it held none.
        self.block_end = -1
        # True when the last chunk began with the LF half of a split CRLF.
        self.skipped_lf = False

    def feed(self, chunk: bytes) -> list[SseEvent]:
        """Consume a chunk; return the events it completed, in order."""
        self.block_end, self.skipped_lf = -1, False
        start = 0
        if self._skip_lf and chunk:
            self._skip_lf = False
            if chunk[0] == 0x0A:  # LF
                start, self.skipped_lf = 1, True
        events: list[SseEvent] = []
        position = start
        for match in _LINE_END.finditer(chunk, start):
            piece: bytes | None = chunk[position : match.start()]
            if position == start:
                piece = self._take_partial(chunk[position : match.start()])
            if piece is not None:
                self._line(piece, match.end(), events)
            position = match.end()
        self._extend_partial(chunk[position:])
        if position > start:
            self._skip_lf = chunk.endswith(b"\r")
        return events

    def _take_partial(self, piece: bytes) -> bytes | None:
        """The line that `piece` ends; None when it overflowed and is dropped."""
        overflow = self._overflow or self._partial_size + len(piece) > self._max_line
        line = b"".join((*self._partial, piece)) if self._partial else piece
        self._partial, self._partial_size, self._overflow = [], 0, False
        return None if overflow else line

    def _extend_partial(self, piece: bytes) -> None:
        if not piece or self._overflow:
            return
        if self._partial_size + len(piece) > self._max_line:
            self._partial, self._partial_size, self._overflow = [], 0, True
            return
        self._partial.append(piece)
        self._partial_size += len(piece)

    def _line(self, line: bytes, end: int, events: list[SseEvent]) -> None:
        if not line:
            self.block_end = end
            if self._data:
                data = b"\n".join(self._data)
                events.append(SseEvent(self._event or "message", data, end))
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
