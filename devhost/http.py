"""The HTTP side: function routes under the route prefix, auth levels and keys, and the admin API.

- `/{routePrefix}/{route}`: the HTTP triggers. 404 when no route matches, 405 when one matches but
  not with this method. Auth levels: `anonymous`; `function` takes any function key or the master
  key, in the `x-functions-key` header or the `code` query parameter; `admin` only the master key.
  Anything else gets 401 with an empty body. Request bodies are capped at 100 MB like the host.
- `GET /admin/host/status` (anonymous here): `{"state": "Running"}`; `GET /admin/host/ping`.
- `GET /admin/functions` (master key): the indexed functions.
- `POST /admin/functions/{name}` (master key, body `{"input": "..."}`): run any function now, as
  Core Tools does; answers 202 at once (502 when the worker process that runs it does not take it).

A function's failure is a 500 with an empty body, as the host answers.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from typing import Any, Final

import azure.functions as func
from aiohttp import web
from multidict import MultiMapping

from devhost.indexer import HttpTriggerSpec, IndexedFunction
from devhost.invoker import Invoker
from devhost.routing import MethodNotAllowed, RouteTable
from devhost.settings import LocalSettings

log = logging.getLogger("devhost.http")
MAX_REQUEST_BYTES: Final = 100 * 1024 * 1024
KEY_HEADER: Final = "x-functions-key"
KEY_QUERY: Final = "code"

OnDemand = Callable[[IndexedFunction, str], Awaitable[None]]


class HandOverFailed(Exception):
    """The worker process that runs a function did not take a manual run of it."""


def _joined(values: MultiMapping[str]) -> dict[str, str]:
    """A multi-valued mapping as the host passes it to the worker: repeated names joined with ','."""
    out: dict[str, str] = {}
    for name in values:
        if name not in out:
            out[name] = ",".join(values.getall(name))
    return out


def _header_dict(headers: MultiMapping[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in headers:
        key = name.lower()
        if key not in out:
            out[key] = ", ".join(headers.getall(name))
    return out


def to_aiohttp_response(value: Any) -> web.Response:
    """Convert what the function produced for its HTTP output into a response."""
    if value is None:
        return web.Response(status=204)
    if isinstance(value, str):
        return web.Response(
            status=200, body=value.encode("utf-8"), content_type="text/plain", charset="utf-8"
        )
    if isinstance(value, func.HttpResponse):
        response = web.Response(status=value.status_code, body=value.get_body())
        has_type = False
        for name, header in value.headers.items():
            response.headers.add(name, header)
            has_type = has_type or name.lower() == "content-type"
        if not has_type:
            mimetype = value.mimetype
            response.headers["Content-Type"] = (
                f"{mimetype}; charset={value.charset}" if mimetype.startswith("text/") else mimetype
            )
        return response
    log.error("HTTP output: cannot convert a %s to a response (return func.HttpResponse or str)", type(value))
    return web.Response(status=500)


class HttpFrontEnd:
    """The aiohttp application in front of the functions."""

    def __init__(
        self,
        functions: Iterable[IndexedFunction],
        *,
        routed: Collection[str] | None = None,
        route_prefix: str,
        keys: LocalSettings,
        invoker: Invoker,
        on_demand: OnDemand,
    ) -> None:
        self._functions = {fn.name.lower(): fn for fn in functions}
        self._prefix = route_prefix.strip("/")
        self._keys = keys
        self._invoker = invoker
        self._on_demand = on_demand
        self._routes: RouteTable[IndexedFunction] = RouteTable()
        for fn in self._functions.values():
            if isinstance(fn.trigger, HttpTriggerSpec) and (routed is None or fn.name in routed):
                self._routes.add(fn.trigger.route, fn.trigger.methods, fn)
        self.accepting = True

    def application(self) -> web.Application:
        app = web.Application(client_max_size=MAX_REQUEST_BYTES)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    # -- keys ---------------------------------------------------------------------------------

    @staticmethod
    def _presented_key(request: web.Request) -> str | None:
        return request.headers.get(KEY_HEADER) or request.query.get(KEY_QUERY)

    def _is_master(self, key: str | None) -> bool:
        return key is not None and hmac.compare_digest(key.encode(), self._keys.master_key.encode())

    def _is_function_key(self, key: str | None) -> bool:
        if key is None:
            return False
        return self._is_master(key) or any(
            hmac.compare_digest(key.encode(), k.encode()) for k in self._keys.function_keys.values()
        )

    def _authorized(self, level: str, request: web.Request) -> bool:
        key = self._presented_key(request)
        if level == "anonymous":
            return True
        if level == "admin":
            return self._is_master(key)
        return self._is_function_key(key)

    # -- dispatch -----------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        if not self.accepting:
            return web.Response(status=503)
        raw_path = request.rel_url.raw_path
        segments = raw_path.strip("/").split("/")
        if segments[0].lower() == "admin":
            return await self._admin(request, segments[1:])
        if self._prefix:
            if segments[0].lower() != self._prefix.lower():
                return web.Response(status=404)
            route_path = "/".join(segments[1:])
        else:
            route_path = raw_path.strip("/")
        found = self._routes.match(request.method, route_path)
        if found is None:
            return web.Response(status=404)
        if isinstance(found, MethodNotAllowed):
            return web.Response(status=405, headers={"Allow": ", ".join(sorted(found.allowed))})
        fn = found.target
        assert isinstance(fn.trigger, HttpTriggerSpec)
        if not self._authorized(fn.trigger.auth_level, request):
            return web.Response(status=401)
        body = await request.read()
        http_request = func.HttpRequest(
            method=request.method,
            url=str(request.url),
            headers=_header_dict(request.headers),
            params=_joined(request.query),
            route_params=dict(found.route_values),
            body=body,
        )
        result = await self._invoker.invoke(
            fn, http_request, reason="request", log_fields={"method": request.method, "path": request.path}
        )
        if not result.succeeded:
            return web.Response(status=500)
        return to_aiohttp_response(result.http_response)

    async def _admin(self, request: web.Request, rest: list[str]) -> web.StreamResponse:
        path = "/".join(rest).lower()
        if path in {"host/status", "host/ping"} and request.method in {"GET", "POST", "HEAD"}:
            return web.json_response({"state": "Running"} if path == "host/status" else {})
        if not rest or rest[0].lower() != "functions":
            return web.Response(status=404)
        if not self._is_master(self._presented_key(request)):
            return web.Response(status=401)
        if len(rest) == 1:
            if request.method != "GET":
                return web.Response(status=405, headers={"Allow": "GET"})
            return web.json_response([fn.describe() for fn in self._functions.values()])
        if len(rest) != 2:
            return web.Response(status=404)
        fn = self._functions.get(rest[1].lower())
        if fn is None:
            return web.Response(status=404)
        if request.method == "GET":
            return web.json_response(fn.describe())
        if request.method != "POST":
            return web.Response(status=405, headers={"Allow": "GET, POST"})
        return await self._run_now(fn, request)

    async def _run_now(self, fn: IndexedFunction, request: web.Request) -> web.StreamResponse:
        text = await request.text()
        payload: Mapping[str, Any] = {}
        if text.strip():
            try:
                loaded = json.loads(text)
            except json.JSONDecodeError:
                return web.json_response({"error": 'the body must be JSON: {"input": "..."}'}, status=400)
            if not isinstance(loaded, dict):
                return web.json_response({"error": "the body must be a JSON object"}, status=400)
            payload = loaded
        given = payload.get("input", "")
        try:
            await self._on_demand(fn, given if isinstance(given, str) else json.dumps(given))
        except HandOverFailed as failure:
            log.error("manual run of %s not taken: %s", fn.name, failure)
            return web.Response(status=502)
        return web.Response(status=202)
