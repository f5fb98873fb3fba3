"""Every answer Graph gives, at the HTTP transport under the connector's sender and msgraph-sdk's
middleware, so each retry after a 429 or 503 counts too: a client span per try (kiota's own spans are
switched off, `sampling.py`), `connector.graph.requests` by method and status, and
`connector.graph.throttles` for the 429s. The span names the resource with its ids taken out
(`graph_resource`): user ids and addresses stay out of telemetry, and the names stay few."""

from __future__ import annotations

import re
from typing import Final

import httpx
from opentelemetry.trace import SpanKind, Status, StatusCode

from shared import telemetry

_ID: Final = re.compile(r"[0-9@=%:'(]|^[A-Za-z0-9_-]{20,}$")  # an id, an address, a key or a filter value
_VERSION: Final = re.compile(r"^(v[0-9]+\.[0-9]+|beta)$")


def graph_resource(path: str) -> str:
    """`/v1.0/users/{id}/events/delta` from `/v1.0/users/8c1f.../events/delta`."""
    segments = [s if not s or _VERSION.match(s) or not _ID.search(s) else "{id}" for s in path.split("/")]
    return "/".join(segments)


class CountedTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        instruments = telemetry.current()
        if instruments is None:
            return await self._inner.handle_async_request(request)
        method = request.method
        resource = graph_resource(request.url.path)
        with instruments.tracer.start_as_current_span(
            f"{method} {resource}",
            kind=SpanKind.CLIENT,
            attributes={
                "http.request.method": method,
                "server.address": request.url.host,
                "url.template": resource,
            },
        ) as span:
            response = await self._inner.handle_async_request(request)
            status = response.status_code
            span.set_attribute("http.response.status_code", status)
            if status >= 400:
                span.set_status(Status(StatusCode.ERROR))
        instruments.graph_requests.add(1, {"method": method, "status": status})
        if status == 429:
            instruments.graph_throttles.add(1, {"method": method})
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()
