"""The gRPC health service (grpc.health.v1), with watches that end at shutdown.

grpc's own asyncio servicer keeps every Watch stream open forever, so one client
watching health holds `server.stop(grace)` for the whole grace period even when
no call is in flight. Here shutdown sends NOT_SERVING to every watcher and then
ends its stream with OK.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

# The generated enum is a plain int at run time.
Status = int


# The generated servicer base is untyped; subclassing it is how grpc wires methods.
class HealthService(health_pb2_grpc.HealthServicer):  # type: ignore[misc]
    def __init__(self) -> None:
        self._status: dict[str, Status] = {"": health_pb2.HealthCheckResponse.SERVING}
        self._changed = asyncio.Condition()
        self._shutting_down = False

    async def Check(
        self,
        request: health_pb2.HealthCheckRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> health_pb2.HealthCheckResponse:
        status = self._status.get(request.service)
        if status is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, "unknown service")
        return health_pb2.HealthCheckResponse(status=status)

    async def Watch(
        self,
        request: health_pb2.HealthCheckRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[health_pb2.HealthCheckResponse]:
        """Each change of the service's status; the last one at shutdown."""
        unknown = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
        last: Status | None = None
        while True:
            async with self._changed:
                status = self._status.get(request.service, unknown)
                ending = self._shutting_down
                if status == last and not ending:
                    await self._changed.wait()
                    continue
            if status != last:
                yield health_pb2.HealthCheckResponse(status=status)
                last = status
            if ending:
                return

    async def set(self, service: str, status: Status) -> None:
        """Set a service's status; ignored once shutdown has begun."""
        if self._shutting_down:
            return
        async with self._changed:
            self._status[service] = status
            self._changed.notify_all()

    async def shut_down(self) -> None:
        """Every service NOT_SERVING for good; watchers get it, then their
        streams end."""
        async with self._changed:
            for service in self._status:
                self._status[service] = health_pb2.HealthCheckResponse.NOT_SERVING
            self._shutting_down = True
            self._changed.notify_all()
