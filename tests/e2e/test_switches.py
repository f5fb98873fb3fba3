"""Per-user switches end to end on the local host and the emulator: each direction turned off stops at once
and keeps its state, and turned on again catches up with no duplicate (appointments to Outlook, Outlook
events to the host, video)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.test_appointments import (
    Org,
    appointment,
    changes,
    copies,
    cursor,
    events,
    get,
    organisation,
    put,
    settled,
    unique,
)
from tests.e2e.test_sync import graph_event, wait_for
from tests.fixtures.connector import Connector

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def org(connector: Connector) -> Org:
    return await organisation(connector)


def switch(org: Org, name: str, **switches: bool) -> dict[str, Any]:
    """The staff PUT naming only these switches (the others keep their value)."""
    with org.api() as api:
        answer = api.put(
            f"/api/v1/tenants/{org.domain}/staff/s-{name}", json={"upn": org.user(name), "switches": switches}
        )
    assert answer.status_code == 200, answer.text
    body = dict(answer.json())
    assert all(body["switches"][k] is v for k, v in switches.items()), body
    return body


def user(org: Org, name: str) -> dict[str, Any]:
    with org.api() as api:
        listed = api.get(f"/api/v1/tenants/{org.domain}/users", params={"q": f"s-{name}"}).json()["value"]
    return dict(next(u for u in listed if u["staff_id"] == f"s-{name}"))


def test_a_non_boolean_switch_is_a_400_naming_it(org: Org) -> None:
    with org.api() as api:
        answer = api.put(
            f"/api/v1/tenants/{org.domain}/staff/s-adele",
            json={"upn": org.user("adele"), "switches": {"calendar_from_outlook": "no"}},
        )
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["field"] == "switches.calendar_from_outlook"
        listed = api.get(f"/api/v1/tenants/{org.domain}/users", params={"switch": "video:maybe"})
        assert listed.status_code == 400 and listed.json()["error"]["field"] == "switch"


def test_appointments_to_outlook_off_then_on_again(org: Org) -> None:
    appointment_id, subject = unique("switch-to")
    assert put(org, appointment_id, appointment(subject, ["s-adele", "s-ben"])).status_code == 202
    assert settled(org, appointment_id, 1)["state"] == "synced"

    switch(org, "adele", calendar_to_outlook=False)
    with org.api() as api:
        off = api.get(f"/api/v1/tenants/{org.domain}/users", params={"switch": "calendar_to_outlook:off"})
    assert [u["staff_id"] for u in off.json()["value"]] == ["s-adele"]
    moved = f"{subject} moved"
    assert put(org, appointment_id, appointment(moved, ["s-adele", "s-ben"], hour=14)).status_code == 202
    held = copies(settled(org, appointment_id, 2))
    assert held["s-adele"]["state"] == "disabled" and "calendar_to_outlook" in held["s-adele"]["error"]
    assert held["s-ben"]["state"] == "synced"
    assert len(events(org, org.user("adele"), subject)) == 1  # left as it was
    assert events(org, org.user("adele"), moved) == []
    assert len(events(org, org.user("ben"), moved)) == 1

    switch(org, "adele", calendar_to_outlook=True)

    def caught_up() -> dict[str, Any] | None:
        adele = copies(get(org, appointment_id).json())["s-adele"]
        return adele if adele["state"] == "synced" else None

    adele = wait_for(caught_up, timeout=60)
    assert adele["event_id"] == held["s-adele"]["event_id"]  # the same event, brought up to date
    assert len(events(org, org.user("adele"), moved)) == 1
    assert events(org, org.user("adele"), subject) == []
    switch(org, "adele", calendar_to_outlook=True)  # on again while on: nothing more happens
    assert len(events(org, org.user("adele"), moved)) == 1


def test_outlook_events_to_the_host_off_then_on_again(org: Org) -> None:
    switch(org, "ben", calendar_from_outlook=False)
    since = cursor(org)
    before = user(org, "ben")["last_sync_at"]
    made = org.outlook.create(org.user("ben"), graph_event("Switched-off dentist", days=4, hour=15))
    wait_for(lambda: user(org, "ben")["last_sync_at"] != before, timeout=60)  # read, not announced
    assert [c for c in changes(org, since) if c["type"].startswith("event.")] == []

    switch(org, "ben", calendar_from_outlook=True)

    def announced() -> list[dict[str, Any]] | None:
        found = [
            c
            for c in changes(org, since)
            if c["type"] == "event.created" and c["data"]["event"]["id"] == made["id"]
        ]
        return found or None

    assert len(wait_for(announced, timeout=60)) == 1
    after = user(org, "ben")["last_sync_at"]
    with org.api() as api:
        assert api.post(f"/api/v1/tenants/{org.domain}/users/s-ben/resync").status_code == 202
    wait_for(lambda: user(org, "ben")["last_sync_at"] != after, timeout=60)
    assert len(announced() or []) == 1  # a second full read announces nothing again


def test_video_off_then_on_again(org: Org) -> None:
    switch(org, "carla", video=False)
    appointment_id, subject = unique("switch-video")
    body = appointment(subject, ["s-carla", "s-ben"], days=5, video=True)
    assert put(org, appointment_id, body).status_code == 202
    record = settled(org, appointment_id, 1)
    meeting = record["meeting"]
    assert meeting is not None and meeting["join_url"], record
    held = copies(record)
    assert held["s-carla"]["join_url"] is None and held["s-ben"]["join_url"] == meeting["join_url"]
    carla = events(org, org.user("carla"), subject)
    assert len(carla) == 1 and not carla[0].get("isOnlineMeeting")  # no meeting of its own
    assert meeting["join_url"] not in carla[0]["body"]["content"]

    switch(org, "carla", video=True)

    def joined() -> dict[str, Any] | None:
        now = get(org, appointment_id).json()
        return now if copies(now)["s-carla"]["join_url"] == meeting["join_url"] else None

    now = wait_for(joined, timeout=60)
    assert now["meeting"]["join_url"] == meeting["join_url"]  # the same meeting: ben's link still works
    carla = events(org, org.user("carla"), subject)
    assert len(carla) == 1 and meeting["join_url"] in carla[0]["body"]["content"]
    assert len(events(org, org.user("ben"), subject)) == 1
