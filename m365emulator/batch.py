"""JSON batching (contract §6.4): up to 20 requests, `dependsOn` (424 for dependents of a failure),
each item run through the full Graph pipeline (auth, faults, throttling: an inner 429 comes back
inside a 200), at most four items at a time as Outlook does."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from m365emulator.errors import GraphError
from m365emulator.graph import emulator_of, json_body, respond

MAX_REQUESTS = 20
PARALLEL = 4
KEEP_HEADERS = ("content-type", "retry-after", "location", "etag", "preference-applied", "odata-version")


def _bad(message: str) -> GraphError:
    return GraphError(400, "BadRequest", message)


def _relative(url: Any) -> str:
    if not isinstance(url, str) or not url:
        raise _bad("Invalid request: the url of a batch request is required.")
    if url.startswith(("https://", "http://")):
        parts = urlsplit(url)
        path = parts.path
        if path.startswith("/v1.0"):
            path = path[len("/v1.0") :]
        url = path + (f"?{parts.query}" if parts.query else "")
    url = "/" + url.lstrip("/")
    if url.lower().startswith("/$batch"):
        raise _bad("Nested batch requests are not supported.")
    return url


async def handle_batch(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    body = await json_body(request)
    items = body.get("requests")
    if not isinstance(items, list) or not items:
        raise _bad("Invalid batch payload format.")
    if len(items) > MAX_REQUESTS:
        raise _bad(f"The number of batch requests exceeds the maximum of {MAX_REQUESTS}.")
    seen: dict[str, dict[str, Any]] = {}
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item.get("method"):
            raise _bad("Invalid batch payload format: each request needs an id, a method and a url.")
        key = item["id"].lower()
        if key in seen:
            raise _bad(f"Request with Id '{item['id']}' is duplicated.")
        seen[key] = item
        _relative(item.get("url"))
        headers = {k.lower(): v for k, v in (item.get("headers") or {}).items()}
        if "body" in item and item["body"] is not None and "content-type" not in headers:
            raise _bad(f"Write request id : {item['id']} does not contain Content-Type header or body.")
    for item in items:
        for dep in item.get("dependsOn") or []:
            if str(dep).lower() not in seen:
                raise _bad(f"Request id '{item['id']}' depends on an unknown request id '{dep}'.")
    _check_cycles(items)
    done: dict[str, asyncio.Future[int]] = {
        i["id"].lower(): asyncio.get_running_loop().create_future() for i in items
    }
    gate = asyncio.Semaphore(PARALLEL)
    auth = request.headers.get("Authorization", "")

    async def run(item: dict[str, Any]) -> dict[str, Any]:
        key = item["id"].lower()
        try:
            for dep in item.get("dependsOn") or []:
                status = await done[str(dep).lower()]
                if not 200 <= status < 300:
                    result: dict[str, Any] = {
                        "id": item["id"],
                        "status": 424,
                        "headers": {"Content-Type": "application/json"},
                        "body": {"error": {"code": "FailedDependency", "message": "Failed dependency"}},
                    }
                    done[key].set_result(424)
                    return result
            async with gate:
                result = await _execute(emu, auth, item)
            done[key].set_result(result["status"])
            return result
        except Exception:
            if not done[key].done():
                done[key].set_result(500)
            raise

    responses = await asyncio.gather(*(run(i) for i in items))
    return respond({"responses": list(responses)})


def _check_cycles(items: list[dict[str, Any]]) -> None:
    deps = {i["id"].lower(): [str(d).lower() for d in i.get("dependsOn") or []] for i in items}
    state: dict[str, int] = {}

    def visit(node: str) -> None:
        if state.get(node) == 1:
            raise _bad("The dependsOn of the batch requests form a cycle.")
        if state.get(node) == 2:
            return
        state[node] = 1
        for dep in deps[node]:
            visit(dep)
        state[node] = 2

    for node in deps:
        visit(node)


async def _execute(emu: Any, auth: str, item: dict[str, Any]) -> dict[str, Any]:
    headers = {str(k): str(v) for k, v in (item.get("headers") or {}).items()}
    headers["Authorization"] = auth
    data: bytes | None = None
    if item.get("body") is not None:
        content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
        raw = item["body"]
        if "json" in content_type.lower() or not isinstance(raw, str):
            data = json.dumps(raw).encode()
        else:
            try:
                data = base64.b64decode(raw, validate=True)
            except ValueError:
                data = raw.encode()
    url = emu.graph_url + _relative(item["url"])
    async with emu.loopback.request(str(item["method"]).upper(), url, headers=headers, data=data) as resp:
        raw_body = await resp.read()
        out: dict[str, Any] = {"id": item["id"], "status": resp.status}
        out["headers"] = {k: v for k, v in resp.headers.items() if k.lower() in KEEP_HEADERS}
        if raw_body:
            if "json" in resp.headers.get("Content-Type", ""):
                out["body"] = json.loads(raw_body)
            else:
                out["body"] = base64.b64encode(raw_body).decode()
        return out


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1.0/$batch", handle_batch)
