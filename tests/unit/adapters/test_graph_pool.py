"""The Graph client's connection pool against a local HTTP server that tells its connections apart: idle
connections are kept up to the limit (httpcore's own pool closed them once the pool held more connections
than that, idle or not), never more than `max_connections` at once, none past its keep-alive expiry, and
a connection the server closed while idle is never handed to a request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from aiohttp import web

from shared.adapters.graph.pool import SWEEP_SECONDS, GraphPool, GraphTransport


@dataclass
class Server:
    url: str
    connections: set[int] = field(default_factory=set)  # each connection's transport, told apart
    open_now: int = 0
    most_open: int = 0

    @property
    def opened(self) -> int:
        return len(self.connections)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    found = Server("")

    async def answer(request: web.Request) -> web.Response:
        assert request.transport is not None
        found.connections.add(id(request.transport))
        found.open_now += 1
        found.most_open = max(found.most_open, found.open_now)
        try:
            await asyncio.sleep(float(request.query.get("wait", "0.02")))
        finally:
            found.open_now -= 1
        return web.json_response({"value": []})

    app = web.Application()
    app.router.add_get("/v1.0/x", answer)
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=float(60))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    found.url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1.0/x"
    yield found
    await runner.cleanup()


def client(most: int, idle: int, expiry: float = 5.0) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=most, max_keepalive_connections=idle, keepalive_expiry=expiry)
    return httpx.AsyncClient(transport=GraphTransport(verify=True, limits=limits))


async def test_idle_connections_are_kept_while_others_are_busy(server: Server) -> None:
    async with client(most=8, idle=6) as http:
        slow = [asyncio.create_task(http.get(server.url, params={"wait": "0.5"})) for _ in range(4)]
        await asyncio.sleep(0.05)
        await asyncio.gather(*(http.get(server.url) for _ in range(4)))  # 8 open, 4 of them idle now
        assert server.opened == 8
        await asyncio.gather(*(http.get(server.url) for _ in range(4)))
        assert server.opened == 8  # the 4 idle ones served them: httpcore's pool closed 2 and opened 2
        assert all(r.status_code == 200 for r in await asyncio.gather(*slow))


async def test_idle_connections_beyond_the_limit_are_closed(server: Server) -> None:
    async with client(most=8, idle=3) as http:
        await asyncio.gather(*(http.get(server.url) for _ in range(8)))
        await asyncio.gather(*(http.get(server.url) for _ in range(8)))
        assert server.opened == 8 + 5  # 3 were kept for the second wave, 5 opened again


async def test_requests_beyond_the_limit_wait_for_a_connection(server: Server) -> None:
    async with client(most=4, idle=4) as http:
        answers = await asyncio.gather(*(http.get(server.url) for _ in range(24)))
    assert [a.status_code for a in answers] == [200] * 24
    assert server.most_open == 4
    assert server.opened == 4


async def test_a_connection_past_its_keep_alive_expiry_is_not_reused(server: Server) -> None:
    async with client(most=4, idle=4, expiry=0.05) as http:
        await http.get(server.url)
        await asyncio.sleep(0.2)
        await http.get(server.url)
    assert server.opened == 2


async def test_a_connection_the_server_closed_while_idle_is_not_handed_out() -> None:
    opened: set[int] = set()

    async def answer(request: web.Request) -> web.Response:
        assert request.transport is not None
        opened.add(id(request.transport))
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/", answer)
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=0.05)  # the server lets idle ones go
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/"
    try:
        async with client(most=4, idle=4) as http:
            await asyncio.gather(*(http.get(url) for _ in range(3)))
            await asyncio.sleep(0.3)
            answers = await asyncio.gather(*(http.get(url) for _ in range(3)))
    finally:
        await runner.cleanup()
    assert [a.status_code for a in answers] == [200] * 3
    assert len(opened) == 6


async def test_idle_connections_past_their_expiry_are_closed_by_the_next_sweep(server: Server) -> None:
    async with GraphPool(max_connections=4, max_keepalive_connections=4, keepalive_expiry=0.05) as pool:
        await asyncio.gather(*(pool.request("GET", server.url) for _ in range(3)))
        assert len(pool.connections) == 3
        await asyncio.sleep(SWEEP_SECONDS + 0.1)
        await pool.request("GET", server.url)
        assert len(pool.connections) == 1  # the three expired: closed; the request had a new one
