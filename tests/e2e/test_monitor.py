"""The message monitor end to end: a host appointment (push) and an Outlook change (pull) in the monitor
with their direction, keys and outcome; a failed delivery retried from the console and delivered; hold and
release with nothing lost and the order kept. The local host runs the real app against the emulator and
Azurite, and the host's webhook is a real HTTP endpoint. (Pruning by age, which moves the shared clock, is
in `test_shared_clock.py`.)"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.test_appointments import Org, appointment, organisation, put, settled, unique
from tests.e2e.test_console import console_link, token_of
from tests.e2e.test_sync import graph_event, wait_for
from tests.fixtures.connector import Connector

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def org(connector: Connector) -> Org:
    return await organisation(connector)


def messages(org: Org, **params: str) -> list[dict[str, Any]]:
    with org.api() as api:
        answer = api.get(f"/api/v1/tenants/{org.domain}/messages", params={"limit": "500", **params})
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["value"]
    return found


def console(org: Org) -> httpx.Client:
    token = token_of(console_link(org.connector, org.domain)["url"])
    return httpx.Client(
        base_url=f"{org.connector.url}/api/console/tenants/{org.domain}",
        headers={"authorization": f"Bearer {token}"},
        timeout=30,
    )


def delivered(org: Org) -> list[dict[str, Any]]:
    return org.connector.receiver.changes(org.domain)


def test_a_host_appointment_and_an_outlook_change_show_their_direction_keys_and_outcome(org: Org) -> None:
    appointment_id, subject = unique("monitor")
    assert put(org, appointment_id, appointment(subject, ["s-adele", "s-ben"])).status_code == 202
    record = settled(org, appointment_id, 1)
    events = {c["staff_id"]: c["event_id"] for c in record["staff"]}

    def pushed() -> list[dict[str, Any]]:
        found = [m for m in messages(org, direction="push") if m["key"] == appointment_id]
        return found if len(found) == 2 else []

    pushes = wait_for(pushed)
    assert {(m["staff_id"], m["kind"], m["status"]) for m in pushes} == {
        ("s-adele", "appointment", "ok"),
        ("s-ben", "appointment", "ok"),
    }
    assert {m["staff_id"]: m["detail"]["event_id"] for m in pushes} == events
    with org.api() as api:
        one = api.get(f"/api/v1/tenants/{org.domain}/messages/{pushes[0]['monitor_id']}")
    assert one.status_code == 200 and one.json() == pushes[0]

    made = org.outlook.create(org.user("adele"), graph_event("Changed in Outlook", days=4))
    with org.api() as api:
        user = api.get(f"/api/v1/tenants/{org.domain}/users/s-adele").json()

    def pulled() -> dict[str, Any] | None:
        for message in messages(org, direction="pull", staff_id="s-adele"):
            if "event.created" in message["detail"].get("types", []):
                return message
        return None

    pull = wait_for(pulled)
    assert (pull["status"], pull["key"]) == ("ok", user["subscription"]["subscription_id"])
    assert pull["kind"] == "notification" and pull["detail"]["found"] >= 1
    feed = {c["sequence"]: c for c in _feed(org)}
    announced = [feed[s] for s in pull["detail"]["sequences"]]
    assert [c["data"]["event"]["id"] for c in announced if c["type"] == "event.created"] == [made["id"]]
    assert user["delta_link_held"] is True and user["delta_link_since"]
    assert "delta_link" not in user and "deltaLink" not in str(user)


def _feed(org: Org) -> list[dict[str, Any]]:
    with org.api() as api:
        body = api.get(f"/api/v1/tenants/{org.domain}/changes", params={"limit": 1000}).json()
    value: list[dict[str, Any]] = body["value"]
    return value


def test_a_failed_delivery_is_visible_retried_from_the_console_then_delivered(org: Org) -> None:
    receiver = org.connector.receiver
    appointment_id, subject = unique("refused")
    receiver.fail_with = 500
    try:
        assert put(org, appointment_id, appointment(subject, ["s-adele"])).status_code == 202
        settled(org, appointment_id, 1)

        def failed() -> dict[str, Any] | None:
            # the failed post that carried this appointment's outcome (another change's may fail beside it)
            synced = [
                c["sequence"]
                for c in _feed(org)
                if c["type"] == "appointment.synced" and c["data"]["appointment_id"] == appointment_id
            ]
            found = [
                m
                for m in messages(org, direction="delivery", status="failed")
                if synced
                and m["detail"]["first_sequence"]
                <= synced[0]
                <= m["detail"].get("last_sequence", m["detail"]["first_sequence"])
            ]
            return found[0] if found else None

        failure = wait_for(failed, timeout=90)  # three attempts a second or two apart, then a dead letter
    finally:
        receiver.fail_with = None
    assert failure["detail"]["status_code"] == 500 and failure["attempts"] == 3
    first = failure["detail"]["first_sequence"]
    with console(org) as api:
        letters = api.get("/dead-letters").json()["value"]
        assert first in [letter["first_sequence"] for letter in letters]
        retried = api.post(f"/messages/{failure['monitor_id']}/retry")
        assert retried.status_code == 202 and retried.json() == {"status": "queued", "queued": "delivery"}
        left = api.get("/dead-letters").json()["value"]
        assert first not in [letter["first_sequence"] for letter in left]

    def taken() -> bool:
        return any(
            c["type"] == "appointment.synced" and c["data"]["appointment_id"] == appointment_id
            for c in delivered(org)
        )

    wait_for(taken, timeout=60)
    ok = [
        m for m in messages(org, direction="delivery", status="ok") if m["detail"]["first_sequence"] == first
    ]
    assert ok and ok[0]["detail"]["status_code"] == 204


def test_hold_and_release_lose_nothing_and_keep_the_order(org: Org) -> None:
    with console(org) as api:
        held = api.post("/delivery/hold")
        assert held.status_code == 200 and held.json()["held"] is True
        try:
            ids = []
            for n in range(3):
                appointment_id, subject = unique(f"held{n}")
                assert (
                    put(org, appointment_id, appointment(subject, ["s-ben"], hour=9 + n)).status_code == 202
                )
                settled(org, appointment_id, 1)
                ids.append(appointment_id)
            feed = _feed(org)
            outcomes = [
                c for c in feed if c["type"] == "appointment.synced" and c["data"]["appointment_id"] in ids
            ]
            assert len(outcomes) == 3
            sent = {c["sequence"] for c in delivered(org)}
            assert not sent & {c["sequence"] for c in outcomes}  # nothing reached the host while held

            def backlog() -> dict[str, Any] | None:
                state = api.get("/delivery").json()
                return state if state["backlog"] >= 3 else None

            state = wait_for(backlog)
            assert state["held"] is True
            assert any(m["status"] == "held" for m in messages(org, direction="delivery"))
        finally:
            released = api.post("/delivery/release")
        assert released.status_code == 202 and released.json()["queued_changes"] >= 3
        assert api.get("/delivery").json()["held"] is False

    def all_there() -> list[dict[str, Any]] | None:
        got = [
            c
            for c in delivered(org)
            if c["type"] == "appointment.synced" and c["data"]["appointment_id"] in ids
        ]
        return got if len(got) >= 3 else None

    got = wait_for(all_there, timeout=60)
    assert [c["data"]["appointment_id"] for c in got] == ids  # in the order they happened
    seen = [c["sequence"] for c in delivered(org)]
    assert all(seen.count(c["sequence"]) == 1 for c in outcomes)  # each once
    assert [c["sequence"] for c in got] == sorted(c["sequence"] for c in outcomes)


def test_bad_filters_and_a_bad_cursor_are_4xx_naming_the_parameter(org: Org) -> None:
    with org.api() as api:
        for params, field in (
            ({"direction": "sideways"}, "direction"),
            ({"status": "lost"}, "status"),
            ({"cursor": "nope"}, "cursor"),
        ):
            answer = api.get(f"/api/v1/tenants/{org.domain}/messages", params=params)
            assert answer.status_code == 400 and answer.json()["error"]["field"] == field, answer.text
        retention = api.patch(f"/api/v1/tenants/{org.domain}/settings", json={"monitor_retention_days": 91})
        assert retention.status_code == 400
        assert retention.json()["error"]["field"] == "settings.monitor_retention_days"


async def test_a_users_subscription_deleted_from_their_page_comes_back_with_a_refresh(org: Org) -> None:
    page = f"/api/v1/tenants/{org.domain}/users/s-carla"

    async def held_in_graph() -> list[str]:
        async with org.connector.control() as control:
            return [s["id"] for s in await control.subscriptions() if s["tenantId"] == org.id]

    with org.api() as api:
        before = api.get(page).json()
        old = before["subscription"]["subscription_id"]
        assert old in await held_in_graph()
        deleted = api.delete(f"{page}/subscription")
        assert deleted.status_code == 200, deleted.text
        assert api.get(page).json()["subscription"] is None
        assert old not in await held_in_graph()
        assert api.post(f"{page}/resync").status_code == 202

        def subscribed_again() -> str | None:
            subscription = api.get(page).json()["subscription"]
            return subscription["subscription_id"] if subscription else None

        new = wait_for(subscribed_again)
    assert new != old and new in await held_in_graph()
    with org.api() as api:
        unknown = api.get(f"/api/v1/tenants/{org.domain}/users/s-nobody")
    assert unknown.status_code == 404 and unknown.json()["error"]["field"] == "staff_id"
