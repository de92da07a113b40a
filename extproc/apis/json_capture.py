"""Pick one object-valued field out of a JSON body as it streams past.

The body is searched for the field's quoted name with `bytes.find` (C speed);
only the object that follows is scanned byte by byte, so a large completion costs
one pass and no copy. Every occurrence is captured and the last complete one
wins, which also finds a nested field such as `response.usage`; `on_value` sees
each one, for reports that repeat a running total.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from extproc.apis.usage import Usage


class JsonFieldCapture:
    def __init__(
        self,
        name: str,
        max_object_bytes: int = 64 << 10,
        on_value: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self._on_value = on_value
        self._needle = b'"' + name.encode() + b'"'
        self._max = max_object_bytes
        self._carry = b""  # the last bytes of the previous chunk, for a split needle
        self._capture: bytearray | None = None
        self._await_value = False  # the needle was seen; waiting for ':' and '{'
        self._depth = 0
        self._in_string = False
        self._escaped = False
        self.value: dict[str, Any] | None = None

    def feed(self, chunk: bytes) -> None:
        data = self._carry + chunk
        position = 0
        while position < len(data):
            if self._capture is not None or self._await_value:
                position = self._scan_value(data, position)
                continue
            found = data.find(self._needle, position)
            if found < 0:
                break
            position = found + len(self._needle)
            self._await_value = found == 0 or data[found - 1 : found] != b"\\"
        self._carry = data[-(len(self._needle) - 1) :] if self._idle() else b""

    def _idle(self) -> bool:
        return self._capture is None and not self._await_value

    def _scan_value(self, data: bytes, position: int) -> int:
        if self._await_value:
            return self._skip_to_object(data, position)
        assert self._capture is not None
        start = position
        while position < len(data):
            byte = data[position]
            position += 1
            if self._in_string:
                if self._escaped:
                    self._escaped = False
                elif byte == 0x5C:  # backslash
                    self._escaped = True
                elif byte == 0x22:  # quote
                    self._in_string = False
            elif byte == 0x22:
                self._in_string = True
            elif byte == 0x7B:  # {
                self._depth += 1
            elif byte == 0x7D:  # }
                self._depth -= 1
                if self._depth == 0:
                    self._capture += data[start:position]
                    self._complete()
                    return position
        self._capture += data[start:position]
        if len(self._capture) > self._max:
            self._capture = None  # not a usage object of any sane size
        return position

    def _skip_to_object(self, data: bytes, position: int) -> int:
        while position < len(data) and data[position] in b" \t\r\n:":
            position += 1
        if position == len(data):
            return position
        self._await_value = False
        if data[position] == 0x7B:
            self._capture = bytearray()
            self._depth, self._in_string, self._escaped = 0, False, False
        return position

    def _complete(self) -> None:
        assert self._capture is not None
        try:
            parsed = json.loads(self._capture)
        except ValueError:
            parsed = None
        self._capture = None
        if isinstance(parsed, dict):
            self.value = parsed
            if self._on_value is not None:
                self._on_value(parsed)


class JsonUsage:
    """The usage extractor of a JSON reply: its last `usage` object, normalized.

    Without a report, output is estimated at one token per `bytes_per_token`
    bytes of the body (0: none, for replies that are not text, like vectors).
    A cut JSON body is rare (providers send it whole): a coarse figure will do.
    """

    def __init__(
        self,
        normalize: Callable[[dict[str, Any]], Usage | None],
        bytes_per_token: int = 4,
    ) -> None:
        self._capture = JsonFieldCapture("usage")
        self._normalize = normalize
        self._per_token = bytes_per_token
        self._bytes = 0

    def feed(self, chunk: bytes) -> bytes | None:
        self._bytes += len(chunk)
        self._capture.feed(chunk)
        return None

    def usage(self) -> Usage | None:
        value = self._capture.value
        return self._normalize(value) if value is not None else None

    def delivered_output_tokens(self) -> int:
        return self._bytes // self._per_token if self._per_token else 0
