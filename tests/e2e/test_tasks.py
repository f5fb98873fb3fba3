"""Host tasks to To Do end to end: PUT through the host API on the local host, written by the real app
through the emulator's Graph, read back from To Do as Graph answers it (app credentials, the way a
staff member's To Do shows it): created, updated, completed, reassigned, deleted; the switches; a missing
list made, a list that cannot be made; all-day due dates in Pacific/Kiritimati and Pacific/Pago_Pago; a
create answered 503 after it took effect, made once."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from shared.domain.tasks import TASK_LINK_APPLICATION
from tests.e2e.test_sync import Outlook, migrated_organisation, wait_for
from tests.fixtures.connector import Connector

pytestmark = pytest.mark.e2e

LIST = "Tasks from the host"
ZONES = {"kiri": "Pacific/Kiritimati", "pago": "Pacific/Pago_Pago"}


@dataclass
class Org:
    connector: Connector
    id: str
    domain: str
    outlook: Outlook

    def user(self, name: str) -> str:
        return f"{name}@{self.domain}"

    def api(self) -> httpx.Client:
        client: httpx.Client = self.connector.api()
        return client


@pytest.fixture(scope="module")
async def org(connector: Connector) -> Org:
    """adele and ben (UTC), kiri and pago (the two extreme zones), migrated."""
    base = await migrated_organisation(connector, events_per_user=0)
    org = Org(connector, base["id"], base["domain"], Outlook(connector, base["id"]))
    async with connector.control() as control:
        for name, zone in ZONES.items():
            await control.create_user(org.id, org.user(name), display_name=name.title(), time_zone=zone)
    with org.api() as api:
        for name in ZONES:
            put = api.put(f"/api/v1/tenants/{org.domain}/staff/s-{name}", json={"upn": org.user(name)})
            assert put.json()["match"] == "matched", put.text

        def migrated() -> bool:
            users = api.get(f"/api/v1/tenants/{org.domain}/users").json()["value"]
            return all(u["state"] == "synced" for u in users)

        wait_for(migrated, timeout=120)
    return org


def new_id(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def put(org: Org, task_id: str, **body: Any) -> httpx.Response:
    with org.api() as api:
        return api.put(f"/api/v1/tenants/{org.domain}/tasks/{task_id}", json={"title": "Call back", **body})


def get(org: Org, task_id: str) -> dict[str, Any]:
    with org.api() as api:
        answer = api.get(f"/api/v1/tenants/{org.domain}/tasks/{task_id}")
        assert answer.status_code == 200, answer.text
        return dict(answer.json())


def settled(org: Org, task_id: str, revision: int, timeout: float = 90) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        body = get(org, task_id)
        return body if body["revision"] >= revision and body["state"] != "pending" else None

    return dict(wait_for(check, timeout=timeout))


def user_row(org: Org, staff_id: str) -> dict[str, Any]:
    with org.api() as api:
        users = api.get(f"/api/v1/tenants/{org.domain}/users").json()["value"]
    return next(u for u in users if u["staff_id"] == staff_id)


def lists(org: Org, name: str) -> dict[str, str]:
    answer = org.outlook.http.get(f"/users/{org.user(name)}/todo/lists")
    assert answer.status_code == 200, answer.text
    return {lst["displayName"]: lst["id"] for lst in answer.json()["value"]}


def tasks_in(org: Org, name: str, list_name: str = LIST, list_id: str | None = None) -> list[dict[str, Any]]:
    list_id = list_id or lists(org, name).get(list_name)
    if list_id is None:
        return []
    answer = org.outlook.http.get(
        f"/users/{org.user(name)}/todo/lists/{list_id}/tasks",
        params={"$expand": "linkedResources,checklistItems"},
    )
    assert answer.status_code == 200, answer.text
    return list(answer.json()["value"])


def linked(org: Org, name: str, task_id: str, list_id: str | None = None) -> list[dict[str, Any]]:
    return [
        t
        for t in tasks_in(org, name, list_id=list_id)
        if any(
            r.get("externalId") == task_id and r.get("applicationName") == TASK_LINK_APPLICATION
            for r in t.get("linkedResources") or ()
        )
    ]


def feed(org: Org, kind: str) -> list[dict[str, Any]]:
    with org.api() as api:
        changes = api.get(f"/api/v1/tenants/{org.domain}/changes", params={"limit": 1000}).json()["value"]
    return [c["data"] for c in changes if c["type"] == kind]


def utc_instant(value: dict[str, str]) -> datetime:
    assert value["timeZone"] == "UTC"
    return datetime.fromisoformat(value["dateTime"][:26] + "+00:00")


async def test_created_updated_completed_and_deleted(org: Org) -> None:
    task_id = new_id("life")
    # The list is made at migration (tasks_from_outlook is on: the list is read from then on) or, where it
    # was not, by the first task; either way there is one.
    assert list(lists(org, "adele")).count(LIST) <= 1
    answer = put(
        org, task_id, staff_id="s-adele", body="About the quote", checklist=[{"id": "a", "title": "Price"}]
    )
    assert answer.status_code == 202 and answer.headers["ETag"] == '"1"', answer.text
    synced = settled(org, task_id, 1)
    assert synced["state"] == "synced", synced
    [made] = linked(org, "adele", task_id)
    assert (made["title"], made["body"]["content"], made["id"]) == (
        "Call back",
        "About the quote",
        synced["graph_task_id"],
    )
    assert [i["displayName"] for i in made["checklistItems"]] == ["Price"]
    row = user_row(org, "s-adele")
    assert (row["todo_list_name"], row["todo_list_id"], row["todo_list_reason"]) == (
        LIST,
        synced["list_id"],
        None,
    )
    assert lists(org, "adele")[LIST] == synced["list_id"]

    put(
        org,
        task_id,
        staff_id="s-adele",
        title="Call back today",
        importance="high",
        checklist=[{"id": "a", "title": "Price", "checked": True}, {"id": "b", "title": "Dates"}],
    )
    settled(org, task_id, 2)
    [updated] = linked(org, "adele", task_id)
    assert (updated["id"], updated["title"], updated["importance"]) == (made["id"], "Call back today", "high")
    assert [(i["displayName"], i["isChecked"]) for i in updated["checklistItems"]] == [
        ("Price", True),
        ("Dates", False),
    ]

    put(
        org,
        task_id,
        staff_id="s-adele",
        title="Call back today",
        status="completed",
        completed_at="2026-11-23T17:45:12+01:00",
    )
    done = settled(org, task_id, 3)
    [completed] = linked(org, "adele", task_id)
    assert completed["status"] == "completed"
    assert utc_instant(completed["completedDateTime"]) == datetime.fromisoformat("2026-11-23T16:45:12+00:00")
    assert done["written_revision"] == 3

    with org.api() as api:
        gone = api.delete(f"/api/v1/tenants/{org.domain}/tasks/{task_id}")
    assert gone.status_code == 202, gone.text
    deleted = settled(org, task_id, 4)
    assert deleted["task"] is None and deleted["graph_task_id"] is None
    assert linked(org, "adele", task_id) == []
    outcomes = [d["revision"] for d in feed(org, "task.synced") if d["task_id"] == task_id]
    assert outcomes == [1, 2, 3, 4]


async def test_a_task_given_to_another_staff_member_moves(org: Org) -> None:
    task_id = new_id("moved")
    put(org, task_id, staff_id="s-adele")
    settled(org, task_id, 1)
    put(org, task_id, staff_id="s-ben")
    moved = settled(org, task_id, 2)
    assert moved["state"] == "synced" and moved["staff_id"] == "s-ben", moved
    assert linked(org, "adele", task_id) == []
    assert [t["id"] for t in linked(org, "ben", task_id)] == [moved["graph_task_id"]]


async def test_switched_off_is_failed_with_the_reason_and_on_again_catches_up(org: Org) -> None:
    task_id = new_id("switch")
    with org.api() as api:
        off = api.put(
            f"/api/v1/tenants/{org.domain}/staff/s-ben",
            json={"upn": org.user("ben"), "switches": {"tasks_to_outlook": False}},
        )
        assert off.json()["switches"]["tasks_to_outlook"] is False, off.text
    try:
        put(org, task_id, staff_id="s-ben")
        failed = settled(org, task_id, 1)
        assert failed["state"] == "failed" and "tasks_to_outlook" in failed["error"], failed
        assert [d["error"] for d in feed(org, "task.failed") if d["task_id"] == task_id] == [failed["error"]]
        assert linked(org, "ben", task_id) == []
    finally:
        with org.api() as api:
            api.put(
                f"/api/v1/tenants/{org.domain}/staff/s-ben",
                json={"upn": org.user("ben"), "switches": {"tasks_to_outlook": True}},
            )

    def caught_up() -> dict[str, Any] | None:
        body = get(org, task_id)
        return body if body["state"] == "synced" else None

    wait_for(caught_up, timeout=90)
    assert len(linked(org, "ben", task_id)) == 1


async def test_the_staff_members_own_list_name_and_a_list_that_cannot_be_made(org: Org) -> None:
    task_id = new_id("own")
    with org.api() as api:
        own = api.put(
            f"/api/v1/tenants/{org.domain}/staff/s-pago",
            # From Outlook off: only the host's writes look for (and make) the list in this test.
            json={
                "upn": org.user("pago"),
                "todo_list_name": "ERP+",
                "switches": {"tasks_from_outlook": False},
            },
        )
        assert own.status_code in (200, 201), own.text
    async with org.connector.control() as control:
        await control.add_fault(
            status=403,
            code="ErrorAccessDenied",
            message="Access is denied.",
            method="POST",
            path=r"/todo/lists$",
            mailbox=org.user("pago"),
        )
    # The rename also queues a catch-up of the tasks earlier tests gave s-pago (they move to "ERP+"): the
    # user's row is read while To Do still refuses, so none of those writes can make the list meanwhile.
    try:
        put(org, task_id, staff_id="s-pago")
        failed = settled(org, task_id, 1)
        assert failed["state"] == "failed" and "ERP+" in failed["error"], failed
        row = user_row(org, "s-pago")
        assert row["todo_list_reason"] == failed["error"] and row["todo_list_id"] is None
        assert row["state"] == "synced"  # the calendar is not affected
    finally:
        async with org.connector.control() as control:
            await control.clear_faults()
    put(org, task_id, staff_id="s-pago", title="Again")
    synced = settled(org, task_id, 2)
    assert synced["state"] == "synced", synced
    assert lists(org, "pago")["ERP+"] == synced["list_id"]
    wait_for(lambda: user_row(org, "s-pago")["todo_list_reason"] is None or None, timeout=30)


@pytest.mark.parametrize("name", sorted(ZONES))
async def test_an_all_day_due_date_never_shifts_in_the_extreme_zones(org: Org, name: str) -> None:
    task_id = new_id(f"due-{name}")
    put(org, task_id, staff_id=f"s-{name}", due="2026-12-31", reminder_at="2026-12-30T21:15:07Z")
    synced = settled(org, task_id, 1)
    assert synced["state"] == "synced", synced
    [made] = linked(org, name, task_id, synced["list_id"])  # pago's own list, when an earlier test named one
    due = utc_instant(made["dueDateTime"]).astimezone(ZoneInfo(ZONES[name]))
    assert due.date() == date(2026, 12, 31)
    assert utc_instant(made["reminderDateTime"]) == datetime.fromisoformat("2026-12-30T21:15:07+00:00")
    assert get(org, task_id)["task"]["due"] == "2026-12-31"


async def test_a_create_answered_503_after_it_took_effect_is_made_once(org: Org) -> None:
    task_id = new_id("lost")
    async with org.connector.control() as control:
        await control.add_fault(
            status=503, method="POST", path=r"/todo/lists/[^/]+/tasks$", when="after", count=4
        )
    try:
        put(org, task_id, staff_id="s-adele", checklist=[{"id": "a", "title": "Once"}])
        synced = settled(org, task_id, 1, timeout=150)
    finally:
        async with org.connector.control() as control:
            await control.clear_faults()
    assert synced["state"] == "synced", synced
    [made] = linked(org, "adele", task_id)
    assert made["id"] == synced["graph_task_id"]
    assert [i["displayName"] for i in made["checklistItems"]] == ["Once"]


async def test_bad_input_is_refused_naming_the_field(org: Org) -> None:
    cases = [
        ({"staff_id": "s-nobody"}, 422, "staff_id"),
        ({"staff_id": "s-adele", "title": ""}, 400, "title"),
        ({"staff_id": "s-adele", "title": "x" * 256}, 400, "title"),
        ({"staff_id": "s-adele", "due": "2026-13-01"}, 400, "due"),
        ({"staff_id": "s-adele", "status": "done"}, 400, "status"),
        ({"staff_id": "s-adele", "body": "x" * 64_001}, 400, "body"),
        (
            {"staff_id": "s-adele", "due": "2026-03-10", "recurrence": "FREQ=WEEKLY;COUNT=2"},
            422,
            "recurrence",
        ),
    ]
    for body, status, field in cases:
        task_id = new_id("bad")
        answer = put(org, task_id, **body)
        assert (answer.status_code, answer.json()["error"]["field"]) == (status, field), answer.text
        with org.api() as api:
            assert api.get(f"/api/v1/tenants/{org.domain}/tasks/{task_id}").status_code == 404
