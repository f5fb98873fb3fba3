"""A `TenantGraph` over an httpx transport (a `MockTransport` or a counted one), unauthenticated: the SDK
client with its middleware and the connector's own sender on the same transport, as `GraphClients`
builds them on the worker's pool."""

from __future__ import annotations

import httpx
from kiota_abstractions.authentication import AnonymousAuthenticationProvider
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph_core import GraphClientFactory

from shared.adapters.graph.client import TenantGraph
from shared.adapters.graph.mailbox_gate import MailboxGate
from shared.adapters.graph.sender import MAX_REDIRECTS, GraphSender


def graph_over(
    transport: httpx.AsyncBaseTransport, base_url: str, *, gate: MailboxGate | None = None
) -> TenantGraph:
    http = GraphClientFactory.create_with_default_middleware(client=httpx.AsyncClient(transport=transport))
    adapter = GraphRequestAdapter(AnonymousAuthenticationProvider(), client=http)
    adapter.base_url = base_url
    sender = GraphSender(httpx.AsyncClient(transport=transport, max_redirects=MAX_REDIRECTS), None)
    uploads = httpx.AsyncClient(transport=transport)
    return TenantGraph(adapter, sender, base_url, gate=gate, http=uploads)
