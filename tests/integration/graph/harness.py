"""The real Graph calendar adapters against the emulator: a fresh organisation per test, the connector
app consented there, `GraphClients` built as the composition root builds them, and a webhook that
answers Graph's validation handshake (the emulator validates `notificationUrl` when a subscription is
created).

`open_emulator_graph(emulator)` is an async context manager, so the contract suite and the integration
tests each wrap it in their own fixture.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from aiohttp import web
from azure.core.credentials_async import AsyncTokenCredential
from azure.identity.aio import ClientSecretCredential

from m365emulator.control import ControlClient
from shared.adapters.graph.calendar import IMMUTABLE_IDS, GraphCalendar, GraphSubscriptions
from shared.adapters.graph.client import GraphClients, TenantGraph, TenantKey
from shared.domain.tenants import AuthMode, Tenant, TenantSettings, TenantState
from tests.fixtures.emulator import EmulatorInfo

GRAPH_SCOPE = "https://graph.microsoft.com/.default"


@dataclass
class EchoWebhook:
    """Answers validation requests with the token; takes notifications with 202 and keeps them."""

    base: str = ""
    validations: int = 0
    received: list[dict[str, Any]] = field(default_factory=list)

    @property
    def notification_url(self) -> str:
        return f"{self.base}/api/graph/notifications"

    @property
    def lifecycle_url(self) -> str:
        return f"{self.base}/api/graph/lifecycle"

    async def handle(self, request: web.Request) -> web.Response:
        token = request.query.get("validationToken")
        if token is not None:
            self.validations += 1
            return web.Response(text=token, content_type="text/plain")
        self.received.extend((await request.json()).get("value", []))
        return web.Response(status=202)


@asynccontextmanager
async def echo_webhook() -> AsyncIterator[EchoWebhook]:
    hook = EchoWebhook()
    app = web.Application()
    app.router.add_post("/api/graph/notifications", hook.handle)
    app.router.add_post("/api/graph/lifecycle", hook.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    hook.base = f"http://127.0.0.1:{port}"
    try:
        yield hook
    finally:
        await runner.cleanup()


def tenant_named(directory_id: str, tenant_id: str) -> Tenant:
    now = datetime.now(UTC)
    return Tenant(
        tenant_id=tenant_id,
        directory_id=directory_id,
        display_name=tenant_id,
        auth_mode=AuthMode.ADMIN_CONSENT,
        state=TenantState.ACTIVE,
        settings=TenantSettings(),
        created_at=now,
        updated_at=now,
    )


@dataclass
class EmulatorGraph:
    """One organisation in the emulator, the connector consented, and the adapters built for it."""

    emulator: EmulatorInfo
    control: ControlClient
    clients: GraphClients
    webhook: EchoWebhook
    tenant: Tenant

    @property
    def client_id(self) -> str:
        return self.emulator.client_id

    async def key_for(self, tenant: Tenant) -> TenantKey:
        return TenantKey(tenant.directory_id, self.emulator.client_id)

    def calendar(self, *, page_size: int = 200) -> GraphCalendar:
        return GraphCalendar(self.clients, self.key_for, page_size=page_size)

    def subscriptions(self) -> GraphSubscriptions:
        return GraphSubscriptions(
            self.clients,
            self.key_for,
            notification_url=self.webhook.notification_url,
            lifecycle_url=self.webhook.lifecycle_url,
        )

    async def graph(self, tenant: Tenant | None = None) -> TenantGraph:
        return await self.clients.for_tenant(await self.key_for(tenant or self.tenant))

    async def new_organisation(self, name: str = "org") -> Tenant:
        """Another organisation with the connector consented (its subscriptions are not ours to see)."""
        domain = f"{name}-{uuid.uuid4().hex[:10]}.example"
        created = await self.control.create_tenant(f"{name} (calendar tests)", [domain])
        await self.control.consent(created["id"], self.emulator.client_id)
        return tenant_named(created["id"], domain)

    async def new_mailbox(self, tenant: Tenant | None = None, **fields: Any) -> str:
        """A new user with an empty mailbox (UTC); answers the Graph user id."""
        tenant = tenant or self.tenant
        upn = f"cal-{uuid.uuid4().hex[:10]}@{tenant.tenant_id}"
        user = await self.control.create_user(tenant.directory_id, upn, time_zone="UTC", **fields)
        return str(user["id"])

    async def seed(
        self, user_id: str, payload: dict[str, Any], *, ews_id: str | None = None
    ) -> dict[str, Any]:
        """An event put in the mailbox as a user would in Outlook; its Graph JSON as the connector reads it
        (`Prefer: IdType="ImmutableId"`: its immutable id, which the seeding answer's REST id is not)."""
        spec: dict[str, Any] = {"event": payload}
        if ews_id:
            spec["ews_id"] = ews_id
        [created] = await self.control.seed_events(self.tenant.directory_id, user_id, [spec])
        graph = await self.graph()
        path = f"/users/{quote(user_id, safe='')}/events/{quote(created['id'], safe='')}"
        read: dict[str, Any] = await graph.request_json("GET", path, headers={"Prefer": IMMUTABLE_IDS})
        return read

    async def revoke_consent(self, tenant: Tenant | None = None) -> None:
        """Grants revoked: new tokens come without roles (the cached token is dropped)."""
        tenant = tenant or self.tenant
        await self.control.revoke_consent(tenant.directory_id, self.emulator.client_id)
        await self.clients.forget(await self.key_for(tenant))


@asynccontextmanager
async def open_emulator_graph(emulator: EmulatorInfo) -> AsyncIterator[EmulatorGraph]:
    async def credential_for(key: TenantKey) -> AsyncTokenCredential:
        return ClientSecretCredential(
            key.directory_id,
            key.client_id,
            emulator.client_secret,
            authority=emulator.authority,
            disable_instance_discovery=True,
            connection_verify=emulator.ca_file,
        )

    clients = GraphClients(emulator.graph, GRAPH_SCOPE, credential_for, ca_bundle=emulator.ca_file)
    try:
        async with emulator.control as control, echo_webhook() as webhook:
            harness = EmulatorGraph(emulator, control, clients, webhook, tenant_named("", ""))
            harness.tenant = await harness.new_organisation("contract")
            yield harness
    finally:
        await clients.close()
