"""The one definition of the benchmark's calls, shared by both load generators.

A call is a Chat Completions POST from one of `CONSUMERS` consumers, each with
its own API key, rotated call by call. The streamed call leaves out
`stream_options`, as most clients do, so the product rewrites its body to ask for
usage, which is the costlier path.
"""

from __future__ import annotations

import json

CONSUMERS = 1000
KEY_FORMAT = "bench-key-%05d"  # printf-style: the wrk script formats keys too
PATH = "/v1/chat/completions"


def api_key(index: int) -> str:
    """The plain API key of consumer `index`."""
    return KEY_FORMAT % index


def request_body(stream: bool) -> str:
    payload: dict[str, object] = {"model": "bench-model", "max_tokens": 256}
    if stream:
        payload["stream"] = True
    payload["messages"] = [
        {"role": "system", "content": "You are a terse assistant."},
        {"role": "user", "content": "Say hello to the benchmark in ten words."},
    ]
    return json.dumps(payload, separators=(",", ":"))


def http_request(port: int, index: int, stream: bool) -> bytes:
    """One whole HTTP/1.1 request, keep-alive, as bytes."""
    body = request_body(stream).encode()
    head = (
        f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {api_key(index)}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body
