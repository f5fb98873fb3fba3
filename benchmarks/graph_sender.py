"""What a Graph request costs the connector's process before and after the wire: msgraph-sdk's request
adapter and middleware (how `TenantGraph.request_bytes` sent until `sender.GraphSender`) against the
connector's own sender, side by side in one run.

    .venv/bin/python -m benchmarks.graph_sender [--requests 4000] [--rounds 5]

Both send the same GET with a JSON answer of a few items (a small delta page) on one `httpx.MockTransport`,
with a bearer token from the same cached credential (azure-identity's own cache stands behind both in the
product), telemetry off: the CPU per request is the client side alone, the wire and the server left out.
The SDK path is built as it was: a `RequestInformation` with the connector's headers and kiota's retry
handler at 0 retries, `send_primitive_async(info, "bytes", ERROR_MAP)` on `GraphRequestAdapter` over
`GraphClientFactory`'s middleware. Printed: microseconds of CPU per request, the median of `--rounds`, the
order alternating round by round.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

import httpx
from azure.core.credentials import AccessToken
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from kiota_http.middleware.options import RetryHandlerOption
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph_core import GraphClientFactory

from shared.adapters.graph.client import ERROR_MAP, TenantGraph
from shared.adapters.graph.sender import MAX_REDIRECTS, BearerTokens, GraphSender

BASE: Final = "https://graph.example/v1.0"
SCOPE: Final = "https://graph.example/.default"
PATH: Final = "/users/5b1e0c8e-9d43-4f0e-a7d1-0d6f2f3f1a01/todo/lists/AAMkList/tasks/delta"
BODY: Final = json.dumps(
    {"value": [{"id": f"AAMk{i}", "title": "Call the landlord", "status": "notStarted"} for i in range(5)]}
).encode()


class CachedCredential:
    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.e30.c2lnbmF0dXJl", 2**31)

    async def close(self) -> None:
        return None


def answer(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=BODY, headers={"Content-Type": "application/json"})


def sdk_adapter() -> GraphRequestAdapter:
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(transport=httpx.MockTransport(answer))
    )
    auth = AzureIdentityAuthenticationProvider(
        CachedCredential(), scopes=[SCOPE], allowed_hosts=["graph.example"]
    )
    adapter = GraphRequestAdapter(auth, client=http)
    adapter.base_url = BASE
    return adapter


def sdk_path() -> Callable[[], Awaitable[bytes]]:
    adapter = sdk_adapter()

    async def send() -> bytes:
        info = RequestInformation()
        info.http_method = Method.GET
        info.url = f"{BASE}{PATH}"
        info.headers.try_add("Accept", "application/json")
        info.headers.add("Prefer", 'outlook.timezone="UTC", odata.maxpagesize=200')
        info.add_request_options([RetryHandlerOption(max_retries=0)])
        raw = await adapter.send_primitive_async(info, "bytes", ERROR_MAP)
        return bytes(raw) if raw else b""

    return send


def sender_path() -> Callable[[], Awaitable[bytes]]:
    http = httpx.AsyncClient(transport=httpx.MockTransport(answer), max_redirects=MAX_REDIRECTS)
    sender = GraphSender(http, BearerTokens(CachedCredential(), SCOPE, "graph.example"))
    graph = TenantGraph(sdk_adapter(), sender, BASE)  # as `GraphClients` builds it
    prefer = {"Prefer": 'outlook.timezone="UTC", odata.maxpagesize=200'}

    async def send() -> bytes:
        return await graph.request_bytes("GET", PATH, headers=prefer)

    return send


PATHS: Final = {"msgraph-sdk adapter + middleware": sdk_path, "GraphSender": sender_path}


async def cpu_per_request(send: Callable[[], Awaitable[bytes]], requests: int) -> float:
    for _ in range(200):
        assert await send() == BODY
    started = time.process_time()
    for _ in range(requests):
        await send()
    return (time.process_time() - started) / requests * 1e6


async def main(args: argparse.Namespace) -> None:
    sends = {name: build() for name, build in PATHS.items()}
    measured: dict[str, list[float]] = {name: [] for name in sends}
    for round_no in range(args.rounds):
        order = list(sends) if round_no % 2 == 0 else list(reversed(sends))
        for name in order:
            measured[name].append(await cpu_per_request(sends[name], args.requests))
    print(f"CPU per Graph request, client side, median of {args.rounds} rounds of {args.requests}:")
    for name, values in measured.items():
        rounds = ", ".join(f"{v:.0f}" for v in values)
        print(f"  {name:<36} {statistics.median(values):8.0f} us   (rounds: {rounds})")
    old, new = (statistics.median(measured[name]) for name in PATHS)
    print(f"  saved per request: {old - new:.0f} us ({(old - new) / old:.0%})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=4000, help="requests per round and path (4000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds, alternating the order (5)")
    asyncio.run(main(parser.parse_args()))
