"""The function app's HTTP functions called in-process, routed as the host routes them, over fakes.

`HostApi.call` picks the function the way the Functions host does (the local host's route table: a
literal segment before a parameter, a catch-all last, a route whose method does not match passed over),
builds the `HttpRequest` the worker would, and runs the function with the container's services replaced
by a `FakeWorld`. Auth levels are the host's business and not checked here; the console's bearer token is
the app's own, so it is sent and checked.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import azure.functions as func

from devhost.routing import RouteMatch, RouteTable, RouteTemplate
from shared import bootstrap
from shared.domain.tenants import TenantState
from shared.service import console
from tests.fakes.directory import FakeOrganisation
from tests.fakes.services import FakeWorld, add_tenant, fake_world

APP_FILE = Path(__file__).parents[3] / "function_app.py"
TENANT = "contoso.example"
DIRECTORY = "9188040d-6c67-4c5b-b112-36a304b66dad"
STAFF = ("s1", "s2")


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    mimetype: str
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error_field(self) -> str | None:
        return self.json()["error"].get("field")


class _Context:
    invocation_id = "test-invocation"


class _Out:
    def __init__(self) -> None:
        self.value: Any = None

    def set(self, value: Any) -> None:
        self.value = value

    def get(self) -> Any:
        return self.value


class _Container:
    def __init__(self, world: FakeWorld) -> None:
        self.services = world.services


@cache
def http_routes() -> RouteTable[Any]:
    """The app's HTTP functions by route. `function_app.py` is loaded afresh under another name: an app
    indexes its functions once (the worker asks once), and the contract tests ask the imported one."""
    spec = importlib.util.spec_from_file_location("function_app_in_process", APP_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    routes: RouteTable[Any] = RouteTable()
    for fn in module.app.get_functions():
        trigger = fn.get_trigger().get_dict_repr()
        if trigger["type"] == "httpTrigger":
            methods = [str(getattr(m, "value", m)) for m in trigger["methods"]]
            routes.add(RouteTemplate(trigger["route"]), methods, fn.get_user_function())
    return routes


class HostApi:
    def __init__(self, world: FakeWorld, console_token: str) -> None:
        self.world = world
        self.console_token = console_token
        self.routes = http_routes()

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        query: dict[str, str] | None = None,
    ) -> Answer:
        """`path` after /api/; `body` as JSON (None: no body), or `raw` bytes."""
        found = self.routes.match(method, path)
        assert isinstance(found, RouteMatch), f"no function takes {method} {path}"
        content = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        headers = {"content-type": "application/json"}
        if path.startswith("console/"):
            headers["authorization"] = f"Bearer {self.console_token}"
        request = func.HttpRequest(
            method,
            f"http://localhost/api/{path}",
            headers=headers,
            params=query or {},
            route_params=dict(found.route_values),
            body=content,
        )
        handler = found.target
        extra: dict[str, Any] = {}
        parameters = inspect.signature(handler).parameters
        if "context" in parameters:
            extra["context"] = _Context()
        if "jobs" in parameters:
            extra["jobs"] = _Out()
        bootstrap.use_container(_Container(self.world))  # type: ignore[arg-type]
        try:
            response = await handler(request, **extra)
        finally:
            bootstrap.use_container(None)
        return Answer(response.status_code, dict(response.headers), response.mimetype, response.get_body())


async def host_api() -> HostApi:
    """An active tenant `contoso.example` with matched staff s1 and s2, and a console token for it."""
    world = fake_world()
    world.directory.add(FakeOrganisation(DIRECTORY, {TENANT}, consented=True))
    await add_tenant(world, TENANT, TenantState.ACTIVE, directory_id=DIRECTORY, matched=len(STAFF))
    link = await console.issue_link(world.services, TENANT, timedelta(hours=1))
    return HostApi(world, parse_qs(urlparse(link.url).query)["token"][0])


def snapshot(world: FakeWorld) -> tuple[Any, ...]:
    """Everything a request could change: the rows, the queue, the feed and the vault."""
    return (
        dict(world.tenants.rows),
        dict(world.users.rows),
        dict(world.appointments.rows),
        dict(world.consent_states.rows),
        list(world.jobs.queued),
        {tenant: list(changes) for tenant, changes in world.feed.entries.items()},
        dict(world.secrets.values),
    )
