"""A stand-in LLM provider speaking each supported API, JSON and streamed.

It plays the provider for `make run`, the docker-compose demo and the tests. The
path picks the API (see extproc.devstack.fake_formats): OpenAI Chat Completions,
Completions, Embeddings and Responses, Anthropic Messages, Gemini
generateContent (server-sent events with `alt=sse`, a JSON array without).
Each request can steer the reply with headers (they are test hooks, not an API):

- `x-fake-prompt-tokens`, `x-fake-completion-tokens`: the usage to report, in
  normalized terms: input with cached and cache-write tokens, output with
  reasoning (defaults: the request's size in bytes / 4, and 16);
- `x-fake-cached-tokens`, `x-fake-cache-write-tokens`,
  `x-fake-reasoning-tokens`: the parts of those that each API reports its way;
- `x-fake-content-encoding`: compress the reply (gzip, deflate, br) whatever
  the request's accept-encoding said;
- `x-fake-status`: answer with this HTTP status and an OpenAI-style error;
- `x-fake-chunks`: content pieces in a stream (default: completion tokens);
- `x-fake-cut-after`: close the connection after this many stream pieces;
- `x-fake-no-usage`: report no usage at all;
- `x-fake-delay-ms`: pause between streamed events.

OpenAI-style streams carry a usage event only when the request asks for it with
`stream_options.include_usage`, as OpenAI does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import zlib
from collections import deque
from dataclasses import dataclass, field
from ssl import SSLContext
from typing import Any

import brotli

from extproc.devstack.fake_formats import Call, Reply, Tokens, builder_for


@dataclass
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class FakeUpstream:
    host: str = "127.0.0.1"
    port: int = 0
    # The latest requests, for tests to inspect; bounded for long demo runs.
    received: deque[ReceivedRequest] = field(default_factory=lambda: deque(maxlen=1000))
    # Serve HTTPS with this context, as a real provider does; plain HTTP if None.
    tls: SSLContext | None = None
    _server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(
            self._serve, self.host, self.port, ssl=self.tls
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                self.received.append(request)
                keep_open = await _reply(request, writer)
                if not keep_open:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()


async def _read_request(reader: asyncio.StreamReader) -> ReceivedRequest | None:
    head = await reader.readuntil(b"\r\n\r\n") if not reader.at_eof() else b""
    if not head:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = await _read_chunked(reader)
    else:
        body = await reader.readexactly(int(headers.get("content-length", "0")))
    return ReceivedRequest(method, path, headers, body)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readline()).split(b";")[0], 16)
        if size == 0:
            await reader.readline()
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readline()


def _tokens(request: ReceivedRequest) -> Tokens:
    headers = request.headers

    def number(name: str, default: int) -> int:
        return int(headers.get(f"x-fake-{name}", default))

    return Tokens(
        prompt=number("prompt-tokens", len(request.body) // 4),
        completion=number("completion-tokens", 16),
        cached=number("cached-tokens", 0),
        cache_write=number("cache-write-tokens", 0),
        reasoning=number("reasoning-tokens", 0),
    )


async def _reply(request: ReceivedRequest, writer: asyncio.StreamWriter) -> bool:
    """Write the reply; False when the connection must close afterwards."""
    headers = request.headers
    status = int(headers.get("x-fake-status", "200"))
    if status != 200:
        error = {"error": {"message": "fake failure", "type": "server_error"}}
        _write_json(writer, status, error, "")
        await writer.drain()
        return True
    try:
        payload = request.json()
    except ValueError:
        payload = {}
    tokens = _tokens(request)
    call = Call(
        path=request.path,
        payload=payload if isinstance(payload, dict) else {},
        tokens=tokens,
        chunks=int(headers.get("x-fake-chunks", tokens.completion)),
        with_usage="x-fake-no-usage" not in headers,
    )
    reply = builder_for(request.path)(call)
    encoding = headers.get("x-fake-content-encoding", "")
    if not reply.pieces:
        _write_json(writer, 200, reply.json_body, encoding)
        await writer.drain()
        return True
    return await _stream(request, reply, _Packer(encoding), writer)


def _write_json(
    writer: asyncio.StreamWriter, status: int, body: Any, encoding: str
) -> None:
    data = _Packer(encoding).pack(json.dumps(body).encode(), final=True)
    coding = f"content-encoding: {encoding}\r\n" if encoding else ""
    writer.write(
        f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n{coding}"
        f"content-length: {len(data)}\r\n\r\n".encode()
        + data
    )


class _Packer:
    """Compresses a body piece by piece, as a provider ignoring accept-encoding."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self._zlib: Any = None
        self._brotli: Any = None
        if encoding in ("gzip", "deflate"):
            bits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
            self._zlib = zlib.compressobj(wbits=bits)
        elif encoding == "br":
            self._brotli = brotli.Compressor()

    def pack(self, data: bytes, final: bool = False) -> bytes:
        if self._zlib is not None:
            mode = zlib.Z_FINISH if final else zlib.Z_SYNC_FLUSH
            return bytes(self._zlib.compress(data) + self._zlib.flush(mode))
        if self._brotli is not None:
            out = self._brotli.process(data)
            return bytes(
                out + (self._brotli.finish() if final else self._brotli.flush())
            )
        return data


async def _stream(
    request: ReceivedRequest,
    reply: Reply,
    packer: _Packer,
    writer: asyncio.StreamWriter,
) -> bool:
    headers = request.headers
    cut_after = int(headers.get("x-fake-cut-after", "-1"))
    delay = int(headers.get("x-fake-delay-ms", "0")) / 1000
    coding = f"content-encoding: {packer.encoding}\r\n" if packer.encoding else ""
    writer.write(
        f"HTTP/1.1 200 OK\r\ncontent-type: {reply.content_type}\r\n{coding}"
        "transfer-encoding: chunked\r\n\r\n".encode()
    )
    _write_chunk(writer, packer.pack(reply.prefix))
    for index, piece in enumerate(reply.pieces):
        if index == cut_after:
            await writer.drain()
            return False  # the connection closes mid-stream
        _write_chunk(writer, packer.pack(piece))
        await writer.drain()
        if delay and index < reply.content_pieces:
            await asyncio.sleep(delay)
    _write_chunk(writer, packer.pack(reply.suffix, final=True))
    writer.write(b"0\r\n\r\n")
    await writer.drain()
    return True


def _write_chunk(writer: asyncio.StreamWriter, data: bytes) -> None:
    if data:
        writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")


def main() -> None:
    parser = argparse.ArgumentParser(description="A fake LLM provider")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    args = parser.parse_args()

    async def serve() -> None:
        upstream = FakeUpstream(args.host, args.port)
        await upstream.start()
        print(f"fake upstream on {args.host}:{upstream.port}", flush=True)
        await asyncio.Event().wait()

    # Ctrl-C reaches the whole demo stack; a quiet exit is the answer.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


if __name__ == "__main__":
    main()
