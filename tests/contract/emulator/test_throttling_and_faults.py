"""Throttling (per app + mailbox budget and concurrency), fault injection before and after the
operation takes effect, and the stats that count all of it."""

from __future__ import annotations

import asyncio
import time

import pytest

pytestmark = pytest.mark.contract

ADELE = "adele.vance%40contoso.example"
ALEX = "alex.wilber%40contoso.example"


async def test_budget_exhaustion_is_429_with_the_documented_body(connector, control):
    await control.set_throttle(budget=3)
    for _ in range(3):
        assert (await connector.http.get(f"users/{ADELE}/todo/lists")).status_code == 200
    throttled = await connector.http.get(f"users/{ADELE}/todo/lists")
    assert throttled.status_code == 429
    retry_after = throttled.headers["Retry-After"]
    assert retry_after.isdigit() and 1 <= int(retry_after) <= 600
    error = throttled.json()["error"]
    assert error["code"] == "TooManyRequests"
    assert error["message"] == "Please retry again later."
    assert error["innerError"]["code"] == "429"
    assert error["innerError"]["status"] == "429"
    assert error["innerError"]["message"] == "Please retry after"
    assert error["innerError"]["request-id"]
    assert (await connector.http.get(f"users/{ALEX}/todo/lists")).status_code == 200  # other mailbox
    await control.advance_clock(seconds=601)
    assert (await connector.http.get(f"users/{ADELE}/todo/lists")).status_code == 200
    stats = await control.stats()
    assert stats["throttled"] == 1
    assert stats["throttled_by_mailbox"] == {"adele.vance@contoso.example": 1}


async def test_concurrency_per_app_and_mailbox(connector, control):
    await control.set_throttle(concurrency=2)
    await control.add_fault(delay_ms=400, path="/todo/lists$", method="GET")
    answers = await asyncio.gather(*(connector.http.get(f"users/{ADELE}/todo/lists") for _ in range(4)))
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200, 200, 429, 429]
    refused = next(r for r in answers if r.status_code == 429)
    assert refused.json()["error"]["code"] == "ApplicationThrottled"
    assert refused.headers["Retry-After"].isdigit()
    other = await asyncio.gather(
        connector.http.get(f"users/{ADELE}/todo/lists"), connector.http.get(f"users/{ALEX}/todo/lists")
    )
    assert [r.status_code for r in other] == [200, 200]


async def test_the_sdk_honours_an_injected_retry_after(connector, control):
    await control.add_fault(status=429, retry_after=1, path="/users/adele", count=1)
    started = time.monotonic()
    user = await connector.graph.users.by_user_id("adele.vance@contoso.example").get()
    assert user.display_name == "Adele Vance"
    assert time.monotonic() - started >= 1
    assert (await control.stats())["faults_injected"] == 1


async def test_fault_before_the_operation_changes_nothing(connector, control):
    lists = (await connector.http.get(f"users/{ADELE}/todo/lists")).json()["value"]
    list_id = lists[0]["id"]
    await control.add_fault(status=503, method="POST", path="/tasks$", when="before", count=1)
    failed = await connector.http.post(f"users/{ADELE}/todo/lists/{list_id}/tasks", json={"title": "before"})
    assert failed.status_code == 503
    titles = [
        t["title"]
        for t in (await connector.http.get(f"users/{ADELE}/todo/lists/{list_id}/tasks")).json()["value"]
    ]
    assert "before" not in titles


async def test_fault_after_the_operation_answers_an_error_but_it_took_effect(connector, control):
    lists = (await connector.http.get(f"users/{ADELE}/todo/lists")).json()["value"]
    list_id = lists[0]["id"]
    await control.add_fault(status=504, method="POST", path="/tasks$", when="after", count=1)
    failed = await connector.http.post(f"users/{ADELE}/todo/lists/{list_id}/tasks", json={"title": "after"})
    assert failed.status_code == 504
    assert failed.json()["error"]["code"] == "GatewayTimeout"
    titles = [
        t["title"]
        for t in (await connector.http.get(f"users/{ADELE}/todo/lists/{list_id}/tasks")).json()["value"]
    ]
    assert "after" in titles


async def test_fault_matches_one_mailbox_and_a_count(connector, control):
    await control.add_fault(
        status=503, code="serviceNotAvailable", mailbox="adele.vance@contoso.example", count=2
    )
    assert (await connector.http.get(f"users/{ALEX}/todo/lists")).status_code == 200
    first = await connector.http.get(f"users/{ADELE}/todo/lists")
    assert first.status_code == 503
    assert first.json()["error"]["code"] == "serviceNotAvailable"
    assert (await connector.http.get(f"users/{ADELE}")).status_code == 503
    assert (await connector.http.get(f"users/{ADELE}/todo/lists")).status_code == 200
    assert await control.faults() == []


async def test_rate_based_fault(connector, control):
    await control.add_fault(status=503, rate=1.0, path="/users$")
    assert (await connector.http.get("users")).status_code == 503
    await control.clear_faults()
    assert (await connector.http.get("users")).status_code == 200


async def test_a_seeded_rate_fault_fails_the_same_requests_again(connector, control):
    """A chaos run's faults replay from its seed: the same requests meet the same faults (through the SDK,
    whose retry handler leaves a 500 alone)."""
    from kiota_abstractions.api_error import APIError

    async def outcomes() -> list[bool]:
        rule = await control.add_fault(status=500, rate=0.5, seed=7, method="GET", path="/users/adele")
        assert rule["seed"] == 7
        seen = []
        for _ in range(16):
            try:
                await connector.graph.users.by_user_id("adele.vance@contoso.example").get()
                seen.append(True)
            except APIError as error:
                assert error.response_status_code == 500
                seen.append(False)
        await control.clear_faults()
        return seen

    first = await outcomes()
    assert await outcomes() == first
    assert True in first and False in first


async def test_a_seed_needs_a_rate_and_an_integer(control):
    from m365emulator.control import ControlFailed

    for rule in ({"status": 503, "seed": 1}, {"status": 503, "rate": 0.5, "seed": "one"}):
        with pytest.raises(ControlFailed) as refused:
            await control.add_fault(**rule)
        assert refused.value.status == 400
    assert await control.faults() == []


async def test_faults_reach_the_token_endpoint(emulator_reset, control):
    from azure.core.exceptions import ClientAuthenticationError

    from tests.contract.emulator.conftest import credential

    emulator = emulator_reset
    await control.add_fault(status=400, code="invalid_request", path="/oauth2/v2.0/token$", count=1)
    cred = credential(emulator, emulator.tenant_id, emulator.client_id, emulator.client_secret)
    with pytest.raises(ClientAuthenticationError):
        await cred.get_token("https://graph.microsoft.com/.default")
    await cred.close()


async def test_stats_count_requests_per_endpoint_and_mailbox(connector, control):
    await connector.http.get(f"users/{ADELE}/todo/lists")
    await connector.http.get(f"users/{ADELE}/todo/lists")
    await connector.http.get("users")
    stats = await control.stats()
    assert stats["requests"]["GET /v1.0/users/{user}/todo/lists"] == 2
    assert stats["requests"]["GET /v1.0/users"] == 1
    assert stats["requests_by_mailbox"]["adele.vance@contoso.example"] == 2


async def test_base_latency_is_applied(connector, control):
    await control.set_latency(150)
    started = time.monotonic()
    await connector.http.get("users")
    assert time.monotonic() - started >= 0.15


async def test_the_stats_keep_the_most_requests_at_once_per_app_and_mailbox(connector, control):
    """Six SDK calls at once on one mailbox: the emulator admits four and refuses two (answered at once;
    the SDK retries them after Retry-After), and its stats say five were asked of Outlook at once (four
    running and one refused), per app and mailbox."""
    await control.add_fault(delay_ms=400, path="/todo/lists$", method="GET")
    mailbox = connector.graph.users.by_user_id("adele.vance@contoso.example")
    answers = await asyncio.gather(*(mailbox.todo.lists.get() for _ in range(6)))
    assert all(answer.value for answer in answers)
    await connector.graph.users.by_user_id("alex.wilber@contoso.example").todo.lists.get()
    stats = await control.stats()
    client = connector.emulator.client_id
    assert stats["concurrency_peak"][f"{client}|adele.vance@contoso.example"] == 5
    assert stats["concurrency_peak"][f"{client}|alex.wilber@contoso.example"] == 1
    assert stats["throttled_by_reason"] == {"concurrency": 2}


async def test_a_tenant_budget_answers_429_naming_its_scope(connector, control):
    """With a budget per app + tenant set, the request past it is refused for any mailbox of the tenant
    (and for requests naming none), with Retry-After and Graph's `x-ms-throttle-scope`; the SDK meets it
    as an error carrying those headers."""
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from kiota_http.middleware.options import RetryHandlerOption

    await control.set_settings(throttle_tenant_budget=2, throttle_tenant_window_s=600)
    assert (await connector.http.get(f"users/{ADELE}/todo/lists")).status_code == 200
    assert (await connector.http.get(f"users/{ALEX}/todo/lists")).status_code == 200
    refused = await connector.http.get("users")
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "TooManyRequests"
    assert 1 <= int(refused.headers["Retry-After"]) <= 600
    scope = f"Tenant_Application/ReadWrite/{connector.emulator.client_id}/{connector.tenant_id}"
    assert refused.headers["x-ms-throttle-scope"] == scope
    once = RequestConfiguration(options=[RetryHandlerOption(max_retries=0)])
    with pytest.raises(Exception) as raised:
        await connector.graph.users.by_user_id("alex.wilber@contoso.example").todo.lists.get(once)
    assert raised.value.response_status_code == 429
    assert {k.lower(): v for k, v in raised.value.response_headers.items()}["x-ms-throttle-scope"] == scope
    stats = await control.stats()
    assert stats["throttled_by_reason"] == {"tenant": 2}
    await control.advance_clock(seconds=601)
    assert (await connector.http.get(f"users/{ADELE}/todo/lists")).status_code == 200
