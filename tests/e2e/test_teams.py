"""Video appointments end to end, for each Teams method: through the host API on the local host, against
the emulator (its application access policies and standalone meetings) and Azurite. A multi-staff video
appointment in copies mode has one join URL in every copy (read back from Outlook), keeps it when moved,
and its meeting ends when it is deleted; a staff member without an access policy is `forbidden` and still
gets their copy, the others unaffected; the status is looked up again by a rematch and by a reauthorize."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.e2e.test_appointments import (
    Org,
    about,
    changes,
    copies,
    cursor,
    delete,
    get,
    organisation,
    put,
    settled,
)
from tests.e2e.test_console import console_link
from tests.e2e.test_sync import wait_for
from tests.e2e.test_tenants import consent
from tests.fixtures.connector import Connector

pytestmark = pytest.mark.e2e

STAFF = ["s-adele", "s-ben", "s-carla"]


def when(days: int, hour: int) -> str:
    moment = (datetime.now(UTC) + timedelta(days=days)).replace(hour=hour, minute=0, second=0, microsecond=0)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def consult(staff: list[str], days: int = 3, **extra: Any) -> dict[str, Any]:
    return {
        "subject": "Video consult",
        "start": when(days, 10),
        "end": when(days, 11),
        "time_zone": "UTC",
        "staff_ids": staff,
        "customers": [{"name": "Chris Customer", "email": "chris@example.org"}],
        "video": {"provider": "teams"},
        **extra,
    }


def event_of(org: Org, staff_id: str, copy: dict[str, Any]) -> dict[str, Any]:
    user = org.user(staff_id.removeprefix("s-"))
    answer = org.outlook.http.get(f"/users/{user}/events/{copy['event_id']}")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def carries(event: dict[str, Any], join_url: str) -> bool:
    online = (event.get("onlineMeeting") or {}).get("joinUrl")
    return online == join_url or join_url in event["body"]["content"]


async def grant(org: Org, *names: str, everyone: bool = False) -> None:
    async with org.connector.control() as control:
        ids = [(await control.get_user(org.id, org.user(n)))["id"] for n in names]
        await control.add_access_policy(org.id, org.connector.client_id, user_ids=ids, global_=everyone)


async def standalone_meetings(org: Org) -> list[dict[str, Any]]:
    async with org.connector.control() as control:
        return await control.meetings(org.id)


def users_by(org: Org, **params: str) -> dict[str, dict[str, Any]]:
    with org.api() as api:
        answer = api.get(f"/api/v1/tenants/{org.domain}/users", params=params)
        assert answer.status_code == 200, answer.text
        return {u["staff_id"]: u for u in answer.json()["value"]}


async def teams_organisation(connector: Connector, method: str) -> Org:
    org = await organisation(connector)
    settings: dict[str, Any] = {"teams_method": method}
    if method == "service_account":
        async with connector.control() as control:
            await control.create_user(org.id, org.user("teams-svc"), display_name="Teams service account")
        await grant(org, "teams-svc")
        settings["teams_organizer"] = org.user("teams-svc")
    elif method == "access_policy":
        await grant(org, "adele", "ben")  # carla has none
    with org.api() as api:
        patched = api.patch(f"/api/v1/tenants/{org.domain}/settings", json=settings)
        assert patched.status_code == 200, patched.text
    if method == "access_policy":  # the settings change looked every staff member's Teams status up again
        wait_for(lambda: users_by(org)["s-carla"]["teams"] == "forbidden")
    return org


def gone(answer: httpx.Response) -> bool:
    """One GET's answer: the appointment removed (404), or still there as deleted."""
    return answer.status_code == 404 or answer.json().get("state") == "deleted"


@pytest.mark.parametrize("method", ["event", "access_policy", "service_account"])
async def test_one_join_url_in_every_copy_moved_then_deleted(connector: Connector, method: str) -> None:
    org = await teams_organisation(connector, method)
    staff = ["s-adele", "s-ben"] if method == "access_policy" else STAFF
    since = cursor(org)
    assert put(org, "teams-1", consult(staff)).status_code == 202
    record = settled(org, "teams-1", 1)
    meeting = record["meeting"]
    assert meeting is not None and meeting["method"] == method, record
    assert {c["join_url"] for c in record["staff"]} == {meeting["join_url"]}
    events = {s: event_of(org, s, c) for s, c in copies(record).items()}
    assert all(carries(e, meeting["join_url"]) for e in events.values())
    online = sorted(s for s, e in events.items() if e.get("isOnlineMeeting"))
    assert online == (["s-adele"] if method == "event" else [])  # never a second meeting
    held = await standalone_meetings(org)
    assert len(held) == (0 if method == "event" else 1)
    (synced,) = about(changes(org, since), "appointment.synced", "teams-1")
    assert synced["data"]["meeting"]["join_url"] == meeting["join_url"]

    assert put(org, "teams-1", consult(staff, days=4)).status_code == 202
    moved = settled(org, "teams-1", 2)
    assert moved["meeting"]["join_url"] == meeting["join_url"]
    assert {c["join_url"] for c in moved["staff"]} == {meeting["join_url"]}
    if method != "event":
        (again,) = await standalone_meetings(org)
        assert again["id"] == held[0]["id"] and again["startDateTime"].startswith(when(4, 10)[:13])

    assert delete(org, "teams-1").status_code in (200, 202)
    wait_for(lambda: gone(get(org, "teams-1")))
    assert await standalone_meetings(org) == []


async def test_a_staff_member_without_an_access_policy_is_forbidden_and_keeps_a_copy(
    connector: Connector,
) -> None:
    org = await teams_organisation(connector, "access_policy")
    status = users_by(org, teams="forbidden")
    assert list(status) == ["s-carla"] and "access policy" in status["s-carla"]["teams_reason"]
    since = cursor(org)
    assert put(org, "teams-2", consult(["s-carla", "s-adele", "s-ben"])).status_code == 202
    record = settled(org, "teams-2", 1)
    meeting = record["meeting"]
    by_staff = copies(record)
    assert all(c["state"] == "synced" and c["join_url"] == meeting["join_url"] for c in by_staff.values())
    assert "access policy" in by_staff["s-carla"]["error"]
    assert by_staff["s-adele"]["error"] is None and by_staff["s-ben"]["error"] is None
    (organised,) = await standalone_meetings(org)
    adele = users_by(org)["s-adele"]["graph_user_id"]
    assert organised["organizer"] == adele  # the first staff member Teams accepts organises it
    assert carries(event_of(org, "s-carla", by_staff["s-carla"]), meeting["join_url"])
    (outcome,) = about(changes(org, since), "appointment.synced", "teams-2")
    assert [s["staff_id"] for s in outcome["data"]["staff"] if s["error"]] == ["s-carla"]

    # The admin grants carla; a rematch looks the status up again.
    await grant(org, "carla")
    with org.api() as api:
        assert api.post(f"/api/v1/tenants/{org.domain}/rematch").status_code == 202
    wait_for(lambda: users_by(org)["s-carla"]["teams"] == "matched")

    # Revoked again (every policy removed); a reauthorize looks it up again.
    async with connector.control() as control:
        for policy in await control.access_policies(org.id):
            await control.delete_access_policy(org.id, policy["id"])
    with org.api() as api:
        again = api.post(f"/api/v1/tenants/{org.domain}/reauthorize")
        assert again.status_code == 200, again.text
        assert consent(connector, again.json()["consent_url"]).status_code == 200
    wait_for(lambda: {u["teams"] for u in users_by(org).values() if u["match"] == "matched"} == {"forbidden"})
    assert get(org, "teams-2").json()["meeting"]["join_url"] == meeting["join_url"]  # issued links stay


async def test_the_console_names_the_policy_grant_with_the_app_id(connector: Connector) -> None:
    org = await teams_organisation(connector, "access_policy")
    link = console_link(connector, org.domain)
    with httpx.Client(timeout=30) as browser:
        page = browser.get(link["url"])
    assert page.status_code == 200
    assert f'data-app-id="{connector.client_id}"' in page.text
    assert "New-CsApplicationAccessPolicy" in page.text and "Grant-CsApplicationAccessPolicy" in page.text
