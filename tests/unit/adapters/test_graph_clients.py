"""The worker's Graph clients: a tenant's client is built once, however many jobs ask for it at once (each
build reads a secret and asks for a token), and built again for a rotated secret."""

from __future__ import annotations

import asyncio
from typing import Any

from azure.core.credentials import AccessToken

from shared.adapters.graph.client import GraphClients, TenantKey


class Credential:
    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("token", 2**31)

    async def close(self) -> None:
        return None


async def test_a_tenants_client_is_built_once_for_jobs_asking_at_once() -> None:
    built: list[TenantKey] = []

    async def credential_for(key: TenantKey) -> Any:
        built.append(key)
        await asyncio.sleep(0.01)  # the secret's read and the token's request take a while
        return Credential()

    clients = GraphClients("https://graph.example/v1.0", "https://graph.example/.default", credential_for)
    first = TenantKey("directory", "app", "v1")
    try:
        graphs = await asyncio.gather(*(clients.for_tenant(first) for _ in range(24)))
        assert built == [first]
        assert all(graph is graphs[0] for graph in graphs)
        rotated = TenantKey("directory", "app", "v2")
        again = await asyncio.gather(*(clients.for_tenant(rotated) for _ in range(8)))
        assert built == [first, rotated]
        assert all(graph is again[0] for graph in again) and again[0] is not graphs[0]
    finally:
        await clients.close()
