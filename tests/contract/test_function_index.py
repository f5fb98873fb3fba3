"""The function index, as the Python worker sends it to the host: one `get_functions()` call.

Every function the product needs is declared with the right trigger, route, methods, auth level,
schedule and queue; no route starts with `admin` (the host rejects those); and the OpenAPI document
lists exactly the HTTP routes the index serves.
"""

from __future__ import annotations

from typing import Any

import azure.functions as func
import pytest

from functions.openapi import documented_routes
from functions.unmatched import CATCH_ALL

pytestmark = pytest.mark.contract

ANON = func.AuthLevel.ANONYMOUS
KEY = func.AuthLevel.FUNCTION

# name -> (route, methods, auth level)
HTTP: dict[str, tuple[str, set[str], func.AuthLevel]] = {
    "health": ("health", {"GET"}, ANON),
    "openapi": ("openapi.json", {"GET"}, ANON),
    "consent_callback": ("consent/callback", {"GET"}, ANON),
    "tenants": ("v1/tenants", {"GET", "POST"}, KEY),
    "tenant": ("v1/tenants/{tid}", {"GET", "DELETE"}, KEY),
    "tenant_settings": ("v1/tenants/{tid}/settings", {"PATCH"}, KEY),
    "tenant_reauthorize": ("v1/tenants/{tid}/reauthorize", {"POST"}, KEY),
    "staff": ("v1/tenants/{tid}/staff/{staff_id}", {"PUT", "DELETE"}, KEY),
    "users": ("v1/tenants/{tid}/users", {"GET"}, KEY),
    "tenant_rematch": ("v1/tenants/{tid}/rematch", {"POST"}, KEY),
    "changes": ("v1/tenants/{tid}/changes", {"GET"}, KEY),
    "appointment": ("v1/tenants/{tid}/appointments/{appointment_id}", {"PUT", "GET", "DELETE"}, KEY),
    "mail": ("v1/tenants/{tid}/mail/{message_id}", {"PUT", "GET"}, KEY),
    "task": ("v1/tenants/{tid}/tasks/{task_id}", {"PUT", "GET", "DELETE"}, KEY),
    "staff_busy": ("v1/tenants/{tid}/staff/{staff_id}/busy", {"GET"}, KEY),
    "availability": ("v1/tenants/{tid}/availability", {"POST"}, KEY),
    "user_resync": ("v1/tenants/{tid}/users/{staff_id}/resync", {"POST"}, KEY),
    "tenant_resync": ("v1/tenants/{tid}/resync", {"POST"}, KEY),
    "dead_letters": ("v1/tenants/{tid}/dead-letters", {"GET"}, KEY),
    "dead_letters_redeliver": ("v1/tenants/{tid}/dead-letters/redeliver", {"POST"}, KEY),
    "graph_notifications": ("graph/notifications", {"POST"}, ANON),
    "graph_lifecycle": ("graph/lifecycle", {"POST"}, ANON),
    "console_links": ("v1/tenants/{tid}/console-links", {"POST"}, KEY),
    "console": ("console", {"GET"}, ANON),
    "console_tenant": ("console/tenants/{tid}", {"GET", "DELETE"}, ANON),
    "console_users": ("console/tenants/{tid}/users", {"GET"}, ANON),
    "console_user_resync": ("console/tenants/{tid}/users/{staff_id}/resync", {"POST"}, ANON),
    "console_resync": ("console/tenants/{tid}/resync", {"POST"}, ANON),
    "console_rematch": ("console/tenants/{tid}/rematch", {"POST"}, ANON),
    "console_reauthorize": ("console/tenants/{tid}/reauthorize", {"POST"}, ANON),
    "console_settings": ("console/tenants/{tid}/settings", {"PATCH"}, ANON),
    "console_switches": ("console/tenants/{tid}/users/switches", {"PATCH"}, ANON),
    # every other path under /api: a JSON 404 (functions/unmatched.py), not part of the documented API
    "zz_unmatched": ("{*path}", {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}, ANON),
}
# name -> schedule (a binding expression resolved from app settings)
TIMERS: dict[str, str] = {
    "renew_subscriptions": "%RENEWAL_SCHEDULE%",
    "nightly_resync": "%NIGHTLY_RESYNC_SCHEDULE%",
}
# name -> queue
QUEUES: dict[str, str] = {
    "tenant_job": "tenant-jobs",
    "sync_job": "sync-jobs",
    "host_delivery": "host-deliveries",
    "outlook_write": "outlook-writes",
}


@pytest.fixture(scope="module")
def index() -> dict[str, Any]:
    import function_app

    return {f.get_function_name(): f for f in function_app.app.get_functions()}


def trigger(fn: Any) -> dict[str, Any]:
    return dict(fn.get_trigger().get_dict_repr())


def methods_of(t: dict[str, Any]) -> set[str]:
    return {str(getattr(m, "value", m)).upper() for m in t["methods"]}


def test_exactly_the_product_functions_are_declared(index: dict[str, Any]) -> None:
    assert set(index) == set(HTTP) | set(TIMERS) | set(QUEUES)


@pytest.mark.parametrize("name", sorted(HTTP))
def test_http_function(index: dict[str, Any], name: str) -> None:
    route, methods, auth = HTTP[name]
    t = trigger(index[name])
    assert t["type"] == "httpTrigger"
    assert t["route"] == route
    assert methods_of(t) == methods
    assert t["authLevel"] == auth


def test_timer_functions(index: dict[str, Any]) -> None:
    timers = {n: trigger(f) for n, f in index.items() if trigger(f)["type"] == "timerTrigger"}
    assert {n: t["schedule"] for n, t in timers.items()} == TIMERS
    assert not any(t.get("runOnStartup") for t in timers.values())


@pytest.mark.parametrize("name", sorted(QUEUES))
def test_queue_function(index: dict[str, Any], name: str) -> None:
    t = trigger(index[name])
    assert t["type"] == "queueTrigger"
    assert t["queueName"] == QUEUES[name]
    assert t["connection"] == "AzureWebJobsStorage"


def test_no_route_conflicts_with_the_hosts_builtin_admin_routes(index: dict[str, Any]) -> None:
    for fn in index.values():
        t = trigger(fn)
        if t["type"] == "httpTrigger":
            assert not t["route"].lower().startswith("admin"), t["route"]


def test_the_catch_all_route_is_the_last_one_the_host_tries(index: dict[str, Any]) -> None:
    """Azure's Functions host tries routes in its functions' order, by name, and the first match wins (see
    functions/unmatched.py): the catch-all sorts after every other HTTP function and is registered last."""
    http = [name for name, fn in index.items() if trigger(fn)["type"] == "httpTrigger"]
    assert http[-1] == CATCH_ALL
    assert max(http) == CATCH_ALL
    assert max(http, key=str.casefold) == CATCH_ALL


def test_openapi_documents_exactly_the_http_routes(index: dict[str, Any]) -> None:
    served = {
        (method, trigger(fn)["route"])
        for fn in index.values()
        if trigger(fn)["type"] == "httpTrigger" and fn.get_function_name() != CATCH_ALL
        for method in methods_of(trigger(fn))
    }
    assert served == documented_routes()
