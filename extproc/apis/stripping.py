"""Withhold chosen events from a server-sent event stream, byte-exactly.

The sidecar asks OpenAI-style servers for a stream's usage report even when the
client did not; the report arrives as one extra event whose `choices` list is
empty, which a client that did not ask for it may trip over. This filter removes
such events and forwards every other byte unchanged.

Chunk boundaries fall anywhere, so an event may straddle chunks. The bytes of a
pending event are held back only while they could still belong to a removable
event (`could_drop`); as soon as they cannot, they are forwarded at once, so
ordinary content is never delayed by more than the few bytes that decide it. A
held event never exceeds `max_held_bytes`: past that it is forwarded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from extproc.apis.sse import SseEvent, SseReader


class EventFilter:
    def __init__(
        self,
        could_drop: Callable[[bytes | bytearray], bool],
        max_held_bytes: int = 64 << 10,
    ) -> None:
        self._could_drop = could_drop
        self._max_held = max_held_bytes
        self._held = bytearray()  # the pending event's bytes, not yet forwarded
        self._passing = False  # the pending event was judged: forward as it comes
        # An event closed on a CR at the last chunk's end: None, or whether it
        # was dropped (its LF, if the next chunk starts with one, goes with it).
        self._cr_closed: bool | None = None

    def forward(
        self,
        chunk: bytes,
        reader: SseReader,
        events: Sequence[SseEvent],
        drops: Sequence[bool],
    ) -> bytes | None:
        """Bytes to forward for `chunk`, or None when they are `chunk` itself.

        `reader` has just read `chunk` and returned `events`; `drops[i]` says
        whether `events[i]` is to be removed.
        """
        if not chunk:
            return None
        out: list[bytes] = []
        position = 0
        if reader.skipped_lf and self._cr_closed is not None:
            position = 1
            if not self._cr_closed:
                out.append(chunk[:1])
        self._cr_closed = None
        for event, drop in zip(events, drops, strict=True):
            self._close_block(chunk[position : event.end], drop, out)
            position = event.end
            if position == len(chunk):
                self._cr_closed = drop
        if reader.block_end > position:  # blocks without data: comments, blanks
            self._close_block(chunk[position : reader.block_end], False, out)
            position = reader.block_end
            if position == len(chunk):
                self._cr_closed = False
        self._pend(chunk[position:], out)
        result = b"".join(out)
        return None if result == chunk else result

    def _close_block(self, rest: bytes, drop: bool, out: list[bytes]) -> None:
        """The pending event ends with `rest`: forward or drop all of it."""
        if drop and not self._passing:
            self._held.clear()
        else:
            if self._held:
                out.append(bytes(self._held))
                self._held.clear()
            out.append(rest)
        self._passing = False

    def _pend(self, tail: bytes, out: list[bytes]) -> None:
        """`tail` begins or continues an event that has not ended yet."""
        if not tail:
            return
        if self._passing:
            out.append(tail)
            return
        self._held += tail
        if len(self._held) > self._max_held or not self._could_drop(self._held):
            out.append(bytes(self._held))
            self._held.clear()
            self._passing = True
