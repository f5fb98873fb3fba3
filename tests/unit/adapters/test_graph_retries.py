"""`TenantGraph`'s own retries, through the connector's sender on an `httpx.MockTransport`: every
throttled answer reaches the tenant's budget; a 429 Graph scopes to the whole tenant pauses the tenant
and is waited out without using the request's retries; any other 429 is retried after its Retry-After,
twice, and then raised."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from shared.adapters.graph.client import TenantGraph
from shared.adapters.graph.errors import GraphError, GraphNotFound, Throttled
from tests.fakes.graph_http import graph_over

pytestmark = pytest.mark.unit

BASE = "https://graph.example/v1.0"
PATH = "/users/5b1e0c8e-9d43-4f0e-a7d1-0d6f2f3f1a01/events"
TENANT_SCOPE = "Tenant_Application/ReadWrite/9a3d526c-b3c1-4479-ba74-197b5c5751ae/0785ef7c-2d7a-4542"
THROTTLED = {"error": {"code": "TooManyRequests", "message": "Please retry again later."}}


def graph(answers: list[httpx.Response], seen: list[httpx.Request]) -> TenantGraph:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers.pop(0)

    return graph_over(httpx.MockTransport(answer), BASE)


def throttled(scope: str | None = None) -> Callable[[], httpx.Response]:
    headers = {"Retry-After": "1", **({"x-ms-throttle-scope": scope} if scope else {})}
    return lambda: httpx.Response(429, json=THROTTLED, headers=headers)


async def test_tenant_wide_429s_pause_the_tenant_and_do_not_use_the_requests_retries() -> None:
    seen: list[httpx.Request] = []
    tenant = graph(
        [throttled(TENANT_SCOPE)() for _ in range(3)] + [httpx.Response(200, json={"ok": 1})], seen
    )
    assert await tenant.request_json("GET", PATH) == {"ok": 1}
    assert len(seen) == 4
    assert [r.headers.get("Retry-Attempt") for r in seen] == [None, "1", "2", "3"]
    assert tenant.budget.throttles == 3
    assert tenant.budget.rate < tenant.budget.ceiling
    assert tenant.budget.waited >= 2.5  # three pauses of about a second


async def test_a_mailbox_429_is_retried_twice_after_retry_after_then_raised() -> None:
    seen: list[httpx.Request] = []
    tenant = graph([throttled()() for _ in range(3)], seen)
    with pytest.raises(Throttled) as raised:
        await tenant.request_json("GET", PATH)
    assert raised.value.status == 429 and raised.value.retry_after == 1
    assert len(seen) == 3
    assert tenant.budget.throttles == 3
    assert tenant.budget.waited == 0  # a mailbox's 429 pauses nobody else


async def test_a_request_that_must_go_once_is_not_sent_again() -> None:
    seen: list[httpx.Request] = []
    tenant = graph([throttled(TENANT_SCOPE)()], seen)
    with pytest.raises(Throttled) as raised:
        await tenant.request_json("POST", f"{PATH}/x/send", retries=0)
    assert raised.value.scope == TENANT_SCOPE
    assert len(seen) == 1


async def test_a_transports_failure_is_a_graph_error_not_retried() -> None:
    """A timeout or a reset connection is not Graph's answer: raised as a `GraphError` without a status
    (the job's own retry decides), the request not sent again here."""
    seen: list[httpx.Request] = []

    def reset(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        raise httpx.ReadTimeout("timed out", request=request)

    tenant = graph_over(httpx.MockTransport(reset), BASE)
    with pytest.raises(GraphError) as raised:
        await tenant.request_json("GET", PATH)
    assert raised.value.status == 0 and "timed out" in raised.value.message
    assert isinstance(raised.value.__cause__, httpx.ReadTimeout)
    assert len(seen) == 1


async def test_graphs_own_failure_is_raised_as_it_is() -> None:
    seen: list[httpx.Request] = []
    answer = httpx.Response(404, json={"error": {"code": "ErrorItemNotFound", "message": "not found"}})
    with pytest.raises(GraphNotFound) as raised:
        await graph([answer], seen).request_json("GET", PATH)
    assert raised.value.code == "ErrorItemNotFound" and raised.value.__cause__ is None
