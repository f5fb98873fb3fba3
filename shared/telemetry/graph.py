"""Every answer Graph gives, counted at the HTTP transport under msgraph-sdk's middleware, so each retry
the SDK makes after a 429 or 503 counts too: `connector.graph.requests` by method and status, and
`connector.graph.throttles` for the 429s. The spans of Graph requests are kiota's own."""

from __future__ import annotations

import httpx

from shared import telemetry


class CountedTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        instruments = telemetry.current()
        if instruments is not None:
            instruments.graph_requests.add(1, {"method": request.method, "status": response.status_code})
            if response.status_code == 429:
                instruments.graph_throttles.add(1, {"method": request.method})
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()
