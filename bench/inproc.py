"""The product's own work per call, without gRPC or Envoy: CPU ms per call.

The ext_proc servicer is driven in this process with the messages Envoy would
send for one call (request headers, body, response headers, body chunks),
against a real Redis, and the process's CPU time is read around many calls.
What it measures is the sidecar's own code plus its Redis client, which is the
part a change to the product can move; being one process's CPU time, it is far
less disturbed by other programs than throughput, which makes it the figure to
compare before and after such a change.

Run: `python -m bench.inproc [--calls 3000] 2>/dev/null` (stderr: the call log).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from envoy.config.core.v3.base_pb2 import HeaderMap, HeaderValue
from envoy.service.ext_proc.v3 import external_processor_pb2 as pb

from bench.sidecar import bench_rules
from bench.upstream import json_reply, stream_events
from bench.workload import CONSUMERS, PATH, api_key, request_body
from extproc.logs import configure
from extproc.processor import ExternalProcessor
from extproc.rules.source import RuleSource
from extproc.server import connect_redis
from extproc.settings import Settings
from extproc.settlement import Settler
from extproc.store.keys import KeySpace
from extproc.store.quota_store import QuotaStore
from tests.harness.processes import RedisServer

# Calls in flight at once, as under load.
CONCURRENCY = 32


def _headers(pairs: dict[str, str], end: bool = False) -> pb.HttpHeaders:
    values = [HeaderValue(key=k, raw_value=v.encode()) for k, v in pairs.items()]
    return pb.HttpHeaders(headers=HeaderMap(headers=values), end_of_stream=end)


def call_messages(index: int, stream: bool) -> list[pb.ProcessingRequest]:
    """What Envoy sends the sidecar for one call, in order."""
    request = {":method": "POST", ":path": PATH, "authorization": "Bearer "}
    request["authorization"] += api_key(index % CONSUMERS)
    kind = "text/event-stream" if stream else "application/json"
    if stream:
        chunks = [_chunk_body(e) for e in stream_events(200)]
    else:
        chunks = [json_reply().split(b"\r\n\r\n", 1)[1]]
    messages = [
        pb.ProcessingRequest(request_headers=_headers(request)),
        pb.ProcessingRequest(
            request_body=pb.HttpBody(
                body=request_body(stream).encode(), end_of_stream=True
            )
        ),
        pb.ProcessingRequest(
            response_headers=_headers({":status": "200", "content-type": kind})
        ),
    ]
    for i, chunk in enumerate(chunks):
        last = i == len(chunks) - 1
        body = pb.HttpBody(body=chunk, end_of_stream=last)
        messages.append(pb.ProcessingRequest(response_body=body))
    return messages


def _chunk_body(http_chunk: bytes) -> bytes:
    """The payload of one HTTP/1.1 chunk (Envoy forwards payloads, not framing)."""
    payload = http_chunk.split(b"\r\n", 1)[1]
    return payload.split(b"\r\n0\r\n\r\n")[0].removesuffix(b"\r\n")


async def _one(processor: ExternalProcessor, messages: list[Any]) -> None:
    async def requests() -> AsyncIterator[pb.ProcessingRequest]:
        for message in messages:
            yield message

    async for _ in processor.Process(requests(), None):
        pass


async def measure(redis_url: str, calls: int, stream: bool) -> dict[str, float]:
    settings = Settings.from_env({}, redis_url=redis_url)
    redis = connect_redis(settings)
    store = QuotaStore(redis, KeySpace(settings.key_prefix))
    settler = Settler(store, 60, settings.events_max_len)
    processor = ExternalProcessor(
        RuleSource(bench_rules(CONSUMERS)), store, settler, 1024
    )
    batches = [
        [call_messages(i, stream) for i in range(start, start + CONCURRENCY)]
        for start in range(0, calls, CONCURRENCY)
    ]
    cpu, wall = time.process_time(), time.perf_counter()
    for batch in batches:
        await asyncio.gather(*(_one(processor, messages) for messages in batch))
    await settler.drain(30)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    await redis.aclose()
    done = len(batches) * CONCURRENCY
    return {"calls": done, "cpu_ms_per_call": round(cpu * 1000 / done, 3),
            "wall_ms_per_call": round(wall * 1000 / done, 3)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    args = parser.parse_args()
    configure("json", "info")  # as in production: one JSON line per call
    server = RedisServer().start()
    try:
        results = {
            workload: asyncio.run(measure(server.url, calls, workload == "stream"))
            for workload, calls in (("json", args.calls), ("stream", args.calls // 10))
        }
    finally:
        server.stop()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
