"""`HttpHostWebhook` against a real HTTP receiver on 127.0.0.1: a delivery taken and verified, and the
ways a host fails (an error status, a slow answer, a redirect, nobody listening) becoming `DeliveryFailed`."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace

import pytest
from aiohttp import web

from shared.adapters.host_webhook import HttpHostWebhook
from shared.domain.signing import SIGNATURE_HEADER, delivery_signature_valid
from shared.domain.tenants import AuthMode, Tenant, TenantSettings, TenantState
from shared.service import jobs
from shared.service.deliveries import DELIVERY_HEADER, deliver_changes
from shared.service.errors import DeliveryFailed
from shared.service.keys import HOST_WEBHOOK_SECRET
from shared.service.records import Change
from tests.fakes.services import fake_world

pytestmark = pytest.mark.integration

SECRET = "whsec-integration-0123456789"
ERROR_BODY = "Traceback: host internals"


@dataclass
class Taken:
    path: str
    body: bytes
    headers: dict[str, str]
    peer: tuple[str, int]


@dataclass
class Receiver:
    base_url: str
    taken: list[Taken] = field(default_factory=list)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    taken: list[Taken] = []

    async def record(request: web.Request) -> None:
        peer = request.transport.get_extra_info("peername") if request.transport else ("", 0)
        taken.append(Taken(request.path, await request.read(), dict(request.headers), tuple(peer[:2])))

    async def ok(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(status=204)

    async def broken(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(status=500, text=ERROR_BODY)

    async def slow(request: web.Request) -> web.Response:
        await record(request)
        await asyncio.sleep(5)
        return web.Response(status=204)

    async def chatty(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(status=200, body=b"x" * 1_000_000)

    async def moved(request: web.Request) -> web.Response:
        await record(request)
        raise web.HTTPFound("/ok")

    app = web.Application()
    app.add_routes([web.post("/ok", ok), web.post("/broken", broken), web.post("/slow", slow)])
    app.add_routes([web.post("/moved", moved), web.post("/chatty", chatty)])
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield Receiver(f"http://127.0.0.1:{port}", taken)
    taken.clear()
    await runner.cleanup()


@pytest.fixture
async def webhook() -> AsyncIterator[HttpHostWebhook]:
    hook = HttpHostWebhook(timeout_seconds=0.5)
    yield hook
    await hook.aclose()


async def test_a_2xx_answer_is_a_delivery_taken(receiver: Receiver, webhook: HttpHostWebhook) -> None:
    await webhook.post(f"{receiver.base_url}/ok", b'{"changes":[]}', {"Content-Type": "application/json"})
    await webhook.post(f"{receiver.base_url}/ok", b'{"changes":[1]}', {"Content-Type": "application/json"})
    first, second = receiver.taken
    assert (first.body, second.body) == (b'{"changes":[]}', b'{"changes":[1]}')
    assert first.headers["Content-Type"] == "application/json"
    assert first.peer == second.peer  # one client, its connection kept alive between posts


async def test_a_long_answer_body_is_still_a_delivery_taken(
    receiver: Receiver, webhook: HttpHostWebhook
) -> None:
    await webhook.post(f"{receiver.base_url}/chatty", b"{}", {})
    await webhook.post(f"{receiver.base_url}/ok", b"{}", {})
    assert [t.path for t in receiver.taken] == ["/chatty", "/ok"]


async def test_an_error_status_is_a_failure_named_by_its_code(
    receiver: Receiver, webhook: HttpHostWebhook
) -> None:
    with pytest.raises(DeliveryFailed) as failure:
        await webhook.post(f"{receiver.base_url}/broken", b"{}", {})
    assert failure.value.reason == "HTTP 500"
    assert failure.value.retryable
    assert ERROR_BODY not in str(failure.value)


async def test_a_slow_answer_is_a_timeout(receiver: Receiver, webhook: HttpHostWebhook) -> None:
    started = asyncio.get_running_loop().time()
    with pytest.raises(DeliveryFailed) as failure:
        await webhook.post(f"{receiver.base_url}/slow", b"{}", {})
    assert asyncio.get_running_loop().time() - started < 2
    assert failure.value.reason.startswith("timeout")
    assert failure.value.retryable
    assert len(receiver.taken) == 1  # it arrived; the answer did not


async def test_a_redirect_is_not_followed(receiver: Receiver, webhook: HttpHostWebhook) -> None:
    with pytest.raises(DeliveryFailed) as failure:
        await webhook.post(f"{receiver.base_url}/moved", b"{}", {})
    assert failure.value.reason == "HTTP 302"
    assert [t.path for t in receiver.taken] == ["/moved"]


async def test_nobody_listening_is_a_retryable_failure(webhook: HttpHostWebhook) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(DeliveryFailed) as failure:
        await webhook.post(f"http://127.0.0.1:{port}/ok", b"{}", {})
    assert failure.value.reason == "no answer (ConnectError)"
    assert failure.value.retryable


async def test_an_unusable_url_is_not_retried(webhook: HttpHostWebhook) -> None:
    with pytest.raises(DeliveryFailed) as failure:
        await webhook.post("ftp://host.example/hooks", b"{}", {})
    assert not failure.value.retryable


async def test_the_client_is_made_again_after_aclose(receiver: Receiver, webhook: HttpHostWebhook) -> None:
    await webhook.post(f"{receiver.base_url}/ok", b"{}", {})
    await webhook.aclose()
    await webhook.post(f"{receiver.base_url}/ok", b"{}", {})
    assert len(receiver.taken) == 2


async def test_the_delivery_service_posts_a_verifiable_delivery_over_http(
    receiver: Receiver, webhook: HttpHostWebhook
) -> None:
    world = fake_world()
    now = world.clock.now()
    tenant_id = "contoso.example"
    await world.tenants.add(
        Tenant(tenant_id, "9188040d-6c67-4c5b-b112-36a304b66dad", "Contoso", AuthMode.ADMIN_CONSENT,
               TenantState.ACTIVE, TenantSettings(), now, now)
    )  # fmt: skip
    world.secrets.values[HOST_WEBHOOK_SECRET] = SECRET
    deleted = {"event": {"id": "AAMk1"}, "appointment_id": None, "reason": "deleted"}
    await world.feed.append(tenant_id, [Change("event.deleted", tenant_id, deleted, now, "s1")])
    services = replace(
        world.services,
        webhook=webhook,
        config=replace(world.services.config, host_webhook_url=f"{receiver.base_url}/ok"),
    )
    await deliver_changes(services, jobs.deliver(tenant_id, 1, 1))
    [taken] = receiver.taken
    assert taken.headers[DELIVERY_HEADER] == f"{tenant_id}:1-1"
    assert delivery_signature_valid(
        SECRET.encode(), taken.headers[SIGNATURE_HEADER], taken.body, int(now.timestamp())
    )
    assert world.jobs.queued == []
