"""A canned OpenAI-style provider fast enough that it never limits the benchmark.

Replies are bytes prepared at start. A JSON call is answered at once. A streamed
call (a body with `"stream":true`) gets its headers at once and then one SSE
event per tick of a shared timer, so every stream carries the same number of
events, spaced in time as a provider spaces tokens, whatever the load: the
proxy then sees the chunks one by one instead of one coalesced burst.

Run: `python -m bench.upstream --port N [--chunks 200] [--tick-ms 1]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket

MODEL = "bench-model"
PROMPT_TOKENS = 24
COMPLETION_TOKENS = 200

_USAGE = {
    "prompt_tokens": PROMPT_TOKENS,
    "completion_tokens": COMPLETION_TOKENS,
    "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
}


def json_reply() -> bytes:
    """A whole chat completion with its usage, as one HTTP/1.1 response."""
    body = json.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "word " * 40},
                    "finish_reason": "stop",
                }
            ],
            "usage": _USAGE,
        },
        separators=(",", ":"),
    ).encode()
    head = (
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)


def _http_chunk(event: object) -> bytes:
    text = event if isinstance(event, str) else json.dumps(event, separators=(",", ":"))
    data = f"data: {text}\n\n".encode()
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def stream_events(chunks: int) -> list[bytes]:
    """The HTTP chunks of one stream: content events, then usage, [DONE], the end."""
    base = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": MODEL,
    }
    events = [
        _http_chunk(
            dict(base, choices=[{"index": 0, "delta": {"content": f"tok{i} "}}])
        )
        for i in range(chunks)
    ]
    tail = _http_chunk(dict(base, choices=[], usage=_USAGE)) + _http_chunk("[DONE]")
    events[-1] += tail + b"0\r\n\r\n"
    return events


class Streams:
    """Every open stream, advanced by one event per tick."""

    def __init__(self, events: list[bytes], tick_s: float) -> None:
        self.events = events
        self.tick_s = tick_s
        self.active: dict[asyncio.Transport, int] = {}

    def start(self, transport: asyncio.Transport) -> None:
        transport.write(STREAM_HEAD)
        self.active[transport] = 0

    def drop(self, transport: asyncio.Transport) -> None:
        self.active.pop(transport, None)

    async def run(self) -> None:
        events, last = self.events, len(self.events) - 1
        while True:
            await asyncio.sleep(self.tick_s)
            done = []
            for transport, index in self.active.items():
                transport.write(events[index])
                if index == last:
                    done.append(transport)
                else:
                    self.active[transport] = index + 1
            for transport in done:
                del self.active[transport]


class Connection(asyncio.Protocol):
    """One keep-alive connection from the proxy; requests come one at a time."""

    def __init__(self, streams: Streams, reply: bytes) -> None:
        self.streams = streams
        self.reply = reply
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.get_extra_info("socket").setsockopt(
            socket.IPPROTO_TCP, socket.TCP_NODELAY, 1
        )
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.streams.drop(self.transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self._one_request():
            pass

    def _one_request(self) -> bool:
        """Answer the first complete request in the buffer; False if none is."""
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        length = _content_length(self.buffer[:end])
        if length is None:
            assert self.transport is not None
            self.transport.close()  # chunked uploads are not part of the bench
            return False
        stop = end + 4 + length
        if len(self.buffer) < stop:
            return False
        body, self.buffer = self.buffer[end + 4 : stop], self.buffer[stop:]
        assert self.transport is not None
        if b'"stream":true' in body:
            self.streams.start(self.transport)
        else:
            self.transport.write(self.reply)
        return True


def _content_length(head: bytes) -> int | None:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return None


async def serve(port: int, chunks: int, tick_s: float) -> None:
    streams = Streams(stream_events(chunks), tick_s)
    reply = json_reply()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: Connection(streams, reply), "127.0.0.1", port, backlog=4096
    )
    async with server:
        await streams.run()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--chunks", type=int, default=200)
    parser.add_argument("--tick-ms", type=float, default=1.0)
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.chunks, args.tick_ms / 1000))


if __name__ == "__main__":
    main()
