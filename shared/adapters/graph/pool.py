"""The Graph client's connection pool: httpcore's, with its bookkeeping pass corrected and made linear.

httpcore 1.0.9 runs `_assign_requests_to_connections` whenever a request starts or ends. Its keep-alive
limit compares `max_keepalive_connections` with the number of ALL the pool's connections, not of the idle
ones (encode/httpcore#1000, open): once a worker holds more connections than the limit, every connection
that goes idle is closed at once, and the next request opens a new one with a TLS handshake (on both ends).
In a 600-user migration with To Do lists that churn was ~4 % of a sync worker's CPU in `_connect` alone,
and the count itself (a list over every connection, for each idle one) is quadratic.

`GraphPool` keeps httpcore's behaviour otherwise: the same order of preference (the first available
connection to the origin, else a new one under `max_connections`, else an idle one closed to make room),
the same expiry (`has_expired`: the keep-alive time or a server that closed an idle connection, which
asks the socket: one poll per idle connection, per pass in httpcore's, so here every connection once a
second and the one a request is about to be given each time). It keeps
up to `max_keepalive_connections` IDLE connections, and never closes one a queued request was just given
(encode/httpcore#1110: it is still idle until its request runs). Measured by `python -m
benchmarks.graph_pool` against httpcore's own pool.
"""

from __future__ import annotations

import ssl
import time
from typing import Final

import httpcore
import httpx
from httpcore._async.interfaces import AsyncConnectionInterface

SWEEP_SECONDS: Final = 1.0  # idle connections are looked at for expiry at most this often


class GraphPool(httpcore.AsyncConnectionPool):
    """httpcore's connection pool, keeping idle connections up to its limit, in one pass per event."""

    _next_sweep: float = 0.0

    def _assign_requests_to_connections(self) -> list[AsyncConnectionInterface]:
        closing: list[AsyncConnectionInterface] = []
        promised = {id(r.connection) for r in self._requests if r.connection is not None}
        # An idle connection's expiry asks its socket whether the server closed it (a poll per connection):
        # every connection is looked at once a second, and the one a request is given, each time.
        now = time.monotonic()
        sweep = now >= self._next_sweep
        if sweep:
            self._next_sweep = now + SWEEP_SECONDS
        kept: list[AsyncConnectionInterface] = []
        idle = 0
        for connection in self._connections:
            if connection.is_closed():
                continue
            if sweep and connection.has_expired():
                closing.append(connection)
                continue
            if connection.is_idle() and id(connection) not in promised:
                if self._max_keepalive_connections is not None and idle >= self._max_keepalive_connections:
                    closing.append(connection)
                    continue
                idle += 1
            kept.append(connection)

        for pool_request in self._requests:
            if not pool_request.is_queued():
                continue
            origin = pool_request.request.url.origin
            given = self._reusable(kept, promised, origin, closing)
            if given is None:
                if self._max_connections is not None and len(kept) >= self._max_connections:
                    spare = next((c for c in kept if c.is_idle() and id(c) not in promised), None)
                    if spare is None:
                        continue  # the request waits for a connection to come free
                    kept.remove(spare)
                    closing.append(spare)
                given = self.create_connection(origin)
                kept.append(given)
            promised.add(id(given))
            pool_request.assign_to_connection(given)
        self._connections = kept
        return closing

    @staticmethod
    def _reusable(
        kept: list[AsyncConnectionInterface],
        promised: set[int],
        origin: httpcore.Origin,
        closing: list[AsyncConnectionInterface],
    ) -> AsyncConnectionInterface | None:
        """The first open connection to `origin` free for a request; expired ones met are closed."""
        for connection in list(kept):
            if id(connection) in promised or not connection.can_handle_request(origin):
                continue
            if not connection.is_available():
                continue
            if connection.has_expired():
                kept.remove(connection)
                closing.append(connection)
                continue
            return connection
        return None


class GraphTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a `GraphPool` (HTTP/1.1, as the connector's Graph client speaks)."""

    def __init__(self, *, verify: ssl.SSLContext | bool, limits: httpx.Limits) -> None:
        context = httpx.create_ssl_context(verify=verify)  # a given context as it is
        super().__init__(verify=context, limits=limits, http2=False)  # its pool is replaced: one TLS context
        self._pool = GraphPool(
            ssl_context=context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
        )
