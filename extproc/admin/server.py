"""The admin gRPC server: its own port, the Admin service, health and reflection.

It listens apart from ext_proc (admin_host:admin_port, loopback by default), so
Envoy's ext_proc cluster can never reach it and it can be firewalled alone.
Health and server reflection need no token, so probes and grpcurl work without
the proto files; every Admin call needs one.
"""

from __future__ import annotations

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from extproc.admin.auth import ENV_TOKEN, TokenRegistry
from extproc.admin.service import AdminService
from extproc.admin.v1 import admin_pb2, admin_pb2_grpc
from extproc.clock import Clock
from extproc.health import HealthService
from extproc.rules.source import RuleSource
from extproc.settings import Settings
from extproc.store.admin_store import AdminStore

log = structlog.get_logger("extproc.admin")

ADMIN_SERVICE = admin_pb2.DESCRIPTOR.services_by_name["Admin"].full_name


class AdminServer:
    def __init__(
        self, settings: Settings, rules: RuleSource, store: AdminStore, clock: Clock
    ) -> None:
        self._address = f"{settings.admin_host}:{settings.admin_port}"
        tokens = TokenRegistry(settings.admin_tokens_file)
        if tokens.empty:
            log.warning(
                "admin_without_tokens",
                remedy=f"set admin_tokens_file or {ENV_TOKEN}; until then every "
                "admin call is refused",
            )
        # Reusing the port would let two sidecars split admin calls silently.
        self.server = grpc.aio.server(options=(("grpc.so_reuseport", 0),))
        service = AdminService(rules, store, tokens, clock)
        # The generated registration function carries no annotations.
        register = admin_pb2_grpc.add_AdminServicer_to_server
        register(service, self.server)  # type: ignore[no-untyped-call]
        self.health = HealthService()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        names = (ADMIN_SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME)
        reflection.enable_server_reflection(names, self.server)
        self.port = 0

    async def start(self) -> int:
        """Bind and serve; returns the port (useful when asked for 0)."""
        host = self._address.rpartition(":")[0]
        self.port = self.server.add_insecure_port(self._address)
        await self.server.start()
        await self._set_health(health_pb2.HealthCheckResponse.SERVING)
        log.info("admin_serving", address=f"{host}:{self.port}")
        return self.port

    async def stop(self, grace: float) -> None:
        await self.health.shut_down()
        await self.server.stop(grace)

    async def _set_health(self, status: int) -> None:
        for service in ("", ADMIN_SERVICE):
            await self.health.set(service, status)
