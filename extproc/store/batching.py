"""Settlements share Redis round trips: while one pipeline is in flight, the
next settlements queue and leave together in the following one.

Under light load every settlement goes alone, at once; under heavy load many go
per round trip, which spares the Redis client most of its per-call work
(connection checkout, socket writes and reads). A settlement's latency does not
matter to the client, whose response has already gone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from extproc.store.scripts import Arg, LuaScript

# The most settlements in one pipeline: bounds the reply a batch waits for.
MAX_BATCH = 128


@dataclass(slots=True)
class _Pending:
    keys: Sequence[str]
    args: Sequence[Arg]
    event: dict[Any, Any]
    done: asyncio.Future[tuple[Any, Any]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class SettlementBatcher:
    """Runs one script call plus one stream entry per settlement, batched."""

    def __init__(
        self, redis: Redis, script: LuaScript, stream: str, max_len: int
    ) -> None:
        self._redis = redis
        self._script = script
        self._stream = stream
        self._max_len = max_len
        self._queue: list[_Pending] = []
        self._sender: asyncio.Task[None] | None = None

    async def run(
        self, keys: Sequence[str], args: Sequence[Arg], event: dict[Any, Any]
    ) -> tuple[Any, Any]:
        """The script's reply and the stream append's, each possibly an error
        object; a failed round trip raises its Redis or socket error."""
        pending = _Pending(keys, args, event)
        self._queue.append(pending)
        if self._sender is None:
            self._sender = asyncio.get_running_loop().create_task(self._send_all())
        return await pending.done

    async def _send_all(self) -> None:
        try:
            while self._queue:
                batch = self._queue[:MAX_BATCH]
                del self._queue[:MAX_BATCH]
                await self._send(batch)
        finally:
            self._sender = None

    async def _send(self, batch: list[_Pending]) -> None:
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for item in batch:
                    keys, args = item.keys, item.args
                    pipe.evalsha(self._script.sha, len(keys), *keys, *args)
                    pipe.xadd(
                        self._stream, item.event, maxlen=self._max_len, approximate=True
                    )
                results = await pipe.execute(raise_on_error=False)
        except Exception as exc:  # the round trip failed: for every member alike
            for item in batch:
                if not item.done.done():
                    item.done.set_exception(exc)
            return
        except BaseException:  # cancelled: so are the settlements waiting on it
            for item in batch:
                item.done.cancel()
            raise
        for index, item in enumerate(batch):
            if not item.done.done():  # its waiter may have been cancelled
                item.done.set_result((results[2 * index], results[2 * index + 1]))
