"""A stand-in LLM provider speaking OpenAI Chat Completions, JSON and streamed.

It plays the provider for `make run`, the docker-compose demo and the tests. Each
request can steer the reply with headers (they are test hooks, not an API):

- `x-fake-prompt-tokens`, `x-fake-completion-tokens`: the usage to report
  (defaults: the request's size in bytes / 4, and 16);
- `x-fake-status`: answer with this HTTP status and an OpenAI-style error;
- `x-fake-chunks`: content events in a stream (default: completion tokens);
- `x-fake-cut-after`: close the connection after this many content events;
- `x-fake-no-usage`: report no usage at all;
- `x-fake-delay-ms`: pause between streamed events.

Streams carry a usage event only when the request asks for it with
`stream_options.include_usage`, as OpenAI does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from ssl import SSLContext
from typing import Any


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


def _usage(request: ReceivedRequest) -> dict[str, int]:
    headers = request.headers
    prompt = int(headers.get("x-fake-prompt-tokens", len(request.body) // 4))
    completion = int(headers.get("x-fake-completion-tokens", "16"))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


async def _reply(request: ReceivedRequest, writer: asyncio.StreamWriter) -> bool:
    """Write the reply; False when the connection must close afterwards."""
    headers = request.headers
    status = int(headers.get("x-fake-status", "200"))
    if status != 200:
        error = {"error": {"message": "fake failure", "type": "server_error"}}
        _write_json(writer, status, error)
        await writer.drain()
        return True
    try:
        payload = request.json()
    except ValueError:
        payload = {}
    if not isinstance(payload, dict):
        payload = {}
    if payload.get("stream") is True:
        return await _stream(request, payload, writer)
    _write_json(writer, 200, _completion(request, payload))
    await writer.drain()
    return True


def _completion(request: ReceivedRequest, payload: Mapping[str, Any]) -> Any:
    body: dict[str, Any] = {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": payload.get("model", "unknown"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello from the fake."},
                "finish_reason": "stop",
            }
        ],
    }
    if "x-fake-no-usage" not in request.headers:
        body["usage"] = _usage(request)
    return body


def _write_json(writer: asyncio.StreamWriter, status: int, body: Any) -> None:
    data = json.dumps(body).encode()
    writer.write(
        f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n"
        f"content-length: {len(data)}\r\n\r\n".encode()
        + data
    )


async def _stream(
    request: ReceivedRequest,
    payload: Mapping[str, Any],
    writer: asyncio.StreamWriter,
) -> bool:
    headers = request.headers
    usage = _usage(request)
    chunks = int(headers.get("x-fake-chunks", usage["completion_tokens"]))
    cut_after = int(headers.get("x-fake-cut-after", "-1"))
    delay = int(headers.get("x-fake-delay-ms", "0")) / 1000
    writer.write(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
        b"transfer-encoding: chunked\r\n\r\n"
    )
    model = payload.get("model", "unknown")
    for index in range(chunks):
        if index == cut_after:
            await writer.drain()
            return False  # the connection closes mid-stream
        delta = {"content": f"tok{index} "}
        _write_event(writer, _chunk(model, [{"index": 0, "delta": delta}]))
        await writer.drain()
        if delay:
            await asyncio.sleep(delay)
    options = payload.get("stream_options") or {}
    if options.get("include_usage") and "x-fake-no-usage" not in headers:
        _write_event(writer, dict(_chunk(model, []), usage=usage))
    _write_event(writer, "[DONE]")
    writer.write(b"0\r\n\r\n")
    await writer.drain()
    return True


def _chunk(model: Any, choices: list[Any]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
    }


def _write_event(writer: asyncio.StreamWriter, data: Any) -> None:
    text = data if isinstance(data, str) else json.dumps(data)
    event = f"data: {text}\n\n".encode()
    writer.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")


def main() -> None:
    parser = argparse.ArgumentParser(description="A fake OpenAI-compatible provider")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    args = parser.parse_args()

    async def serve() -> None:
        upstream = FakeUpstream(args.host, args.port)
        await upstream.start()
        print(f"fake upstream on {args.host}:{upstream.port}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
