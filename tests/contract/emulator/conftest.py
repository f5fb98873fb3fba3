"""Helpers for the emulator contract suite: the real SDK clients pointed at the emulator, a raw
Graph client for what the SDK hides, and a webhook receiver on a free loopback port."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from aiohttp import web
from azure.identity.aio import ClientSecretCredential
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph_core import GraphClientFactory

from tests.fixtures.emulator import EmulatorInfo

GRAPH_SCOPE = "https://graph.microsoft.com/.default"


def credential(emulator: EmulatorInfo, tenant_id: str, client_id: str, secret: str) -> ClientSecretCredential:
    return ClientSecretCredential(
        tenant_id,
        client_id,
        secret,
        authority=emulator.authority,
        disable_instance_discovery=True,
        connection_verify=emulator.ca_file,
    )


def graph_client(emulator: EmulatorInfo, cred: ClientSecretCredential) -> GraphServiceClient:
    auth = AzureIdentityAuthenticationProvider(cred, scopes=[GRAPH_SCOPE])
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(verify=emulator.ssl_context())
    )
    adapter = GraphRequestAdapter(auth, client=http)
    adapter.base_url = emulator.graph
    return GraphServiceClient(request_adapter=adapter)


async def raw_token(
    emulator: EmulatorInfo, tenant_id: str, client_id: str, secret: str, scope: str = GRAPH_SCOPE
) -> str:
    cred = credential(emulator, tenant_id, client_id, secret)
    try:
        return (await cred.get_token(scope)).token
    finally:
        await cred.close()


@dataclass
class Connector:
    """The demo connector app, consented in Contoso for one test, through the SDK and raw HTTP."""

    emulator: EmulatorInfo
    cred: ClientSecretCredential
    graph: GraphServiceClient
    http: httpx.AsyncClient
    token: str

    @property
    def tenant_id(self) -> str:
        return self.emulator.tenant_id


@pytest.fixture
async def connector(emulator_reset: EmulatorInfo) -> AsyncIterator[Connector]:
    emulator = emulator_reset
    async with emulator.control as control:
        await control.consent(emulator.tenant_id, emulator.client_id)
    cred = credential(emulator, emulator.tenant_id, emulator.client_id, emulator.client_secret)
    token = (await cred.get_token(GRAPH_SCOPE)).token
    http = httpx.AsyncClient(
        base_url=emulator.graph + "/",
        verify=emulator.ssl_context(),
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    try:
        yield Connector(emulator, cred, graph_client(emulator, cred), http, token)
    finally:
        await http.aclose()
        await cred.close()
        # Leave Contoso as the demo seed has it (not consented) for whoever runs next.
        async with emulator.control as control:
            await control.revoke_consent(emulator.tenant_id, emulator.client_id)


@pytest.fixture
async def control(emulator_reset: EmulatorInfo) -> AsyncIterator[Any]:
    async with emulator_reset.control as client:
        yield client


# --- webhook receiver -----------------------------------------------------------------------------


@dataclass
class Receiver:
    """Records validation requests and notification POSTs; behaviour switchable per test."""

    base: str = ""
    validations: list[dict[str, Any]] = field(default_factory=list)
    notifications: list[dict[str, Any]] = field(default_factory=list)
    posts: list[list[dict[str, Any]]] = field(default_factory=list)
    lifecycle: list[dict[str, Any]] = field(default_factory=list)
    echo: str = "exact"  # exact | wrong | slow | error
    fail_next: int = 0
    slow_next: int = 0
    slow_s: float = 0.0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"{self.base}/notify?tenant=abc"

    @property
    def lifecycle_url(self) -> str:
        return f"{self.base}/lifecycle"

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("timed out waiting for notifications")
            await asyncio.sleep(0.02)


async def _handle(receiver: Receiver, request: web.Request, kind: str) -> web.Response:
    token = request.query.get("validationToken")
    if token is not None:
        receiver.validations.append(
            {"path": request.path, "token": token, "content_type": request.headers.get("Content-Type", "")}
        )
        if receiver.echo == "wrong":
            return web.Response(text="not the token", content_type="text/plain")
        if receiver.echo == "error":
            return web.Response(status=500)
        if receiver.echo == "slow":
            await asyncio.sleep(receiver.slow_s)
        return web.Response(text=token, content_type="text/plain")
    body = await request.json()
    if receiver.fail_next > 0:
        receiver.fail_next -= 1
        return web.Response(status=503)
    if receiver.slow_next > 0:
        receiver.slow_next -= 1
        await asyncio.sleep(receiver.slow_s)
    items = body["value"]
    if kind == "lifecycle":
        receiver.lifecycle.extend(items)
    else:
        receiver.posts.append(items)
        receiver.notifications.extend(items)
    receiver.arrived.set()
    return web.Response(status=202)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver()

    def route(kind: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            return await _handle(state, request, kind)

        return handler

    app = web.Application()
    app.router.add_post("/notify", route("change"))
    app.router.add_post("/lifecycle", route("lifecycle"))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state.base = f"http://127.0.0.1:{port}"
    try:
        yield state
    finally:
        await runner.cleanup()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def pytest_configure(config: pytest.Config) -> None:
    # msgraph-sdk's generated builders warn on every call; pyproject only silences kiota's.
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:msgraph.*")
