"""An open-loop load generator for latency at a fixed rate.

Calls start on a fixed schedule whatever the replies do, and each latency is
measured from the call's scheduled start, so a slow reply cannot hide the calls
queued behind it (no coordinated omission). It speaks just enough HTTP/1.1 for
Envoy's replies: keep-alive, `content-length` or chunked bodies. For a stream it
notes when the headers, the first SSE event and the last byte arrived.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

# A call that takes longer than this is counted as failed (status -1), in s.
CALL_TIMEOUT_S = 10.0
# How long the generator waits for stragglers after the schedule ends, in s.
DRAIN_TIMEOUT_S = 15.0


@dataclass(frozen=True, slots=True)
class Sample:
    """One call's timings, in seconds from its scheduled start."""

    status: int  # -1: timed out or the connection failed
    total_s: float = 0.0  # until the last byte of the body
    headers_s: float = 0.0  # until the response headers
    first_event_s: float = 0.0  # until the first SSE event (streams only)
    events: int = 0  # SSE events received
    last_event_s: float = 0.0  # until the last chunk holding an event


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class Pool:
    """Idle keep-alive connections to one port; new ones are opened on demand."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.idle: list[Connection] = []

    async def take(self) -> Connection:
        if self.idle:
            return self.idle.pop()
        return await asyncio.open_connection("127.0.0.1", self.port)

    def give_back(self, connection: Connection) -> None:
        self.idle.append(connection)

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()


async def _read_body(reader: asyncio.StreamReader, head: bytes, clock: Clock) -> None:
    length = _header(head, b"content-length")
    if length is not None:
        await reader.readexactly(int(length))
        return
    while True:
        size = int((await reader.readline()).split(b";")[0], 16)
        if size == 0:
            await reader.readline()
            return
        data = await reader.readexactly(size + 2)  # with its CRLF
        clock.saw(data.count(b"data: "))


def _header(head: bytes, name: bytes) -> bytes | None:
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name:
            return value.strip()
    return None


class Clock:
    """Times of one call's milestones relative to its scheduled start."""

    def __init__(self, scheduled: float) -> None:
        self.scheduled = scheduled
        self.events = 0
        self.first_event = 0.0
        self.last_event = 0.0

    def since(self) -> float:
        return time.perf_counter() - self.scheduled

    def saw(self, events: int) -> None:
        if not events:
            return
        now = self.since()
        if not self.events:
            self.first_event = now
        self.events += events
        self.last_event = now


async def _call(pool: Pool, request: bytes, scheduled: float) -> Sample:
    reader, writer = connection = await pool.take()
    clock = Clock(scheduled)
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    headers_s = clock.since()
    await _read_body(reader, head, clock)
    total_s = clock.since()
    if _header(head, b"connection") == b"close":
        writer.close()
    else:
        pool.give_back(connection)
    return Sample(
        int(head[9:12]), total_s, headers_s, clock.first_event, clock.events,
        clock.last_event,
    )  # fmt: skip


async def _guarded(pool: Pool, request: bytes, scheduled: float) -> Sample:
    try:
        return await asyncio.wait_for(_call(pool, request, scheduled), CALL_TIMEOUT_S)
    except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
        return Sample(-1)


async def run(
    port: int, requests: Sequence[bytes], rate: float, duration_s: float
) -> list[Sample]:
    """Start `rate` calls per second for `duration_s`, cycling over `requests`."""
    pool = Pool(port)
    count = int(rate * duration_s)
    start = time.perf_counter() + 0.05
    tasks = []
    for i in range(count):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        request = requests[i % len(requests)]
        tasks.append(asyncio.create_task(_guarded(pool, request, scheduled)))
    done, pending = await asyncio.wait(tasks, timeout=DRAIN_TIMEOUT_S)
    for task in pending:
        task.cancel()
    pool.close()
    return [t.result() for t in done] + [Sample(-1)] * len(pending)
