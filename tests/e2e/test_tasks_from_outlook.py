"""To Do tasks, Outlook to host, end to end: the local host runs the real app against the emulator (which
delivers real change notifications on the lists' todoTask subscriptions) and Azurite. Staff members add,
edit, complete, move and delete tasks in their list through Graph as their To Do would; migration links
the host's tasks already there and announces only the others; each switch in this direction; an expired
tasks delta token."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

from shared.domain.outlook_tasks import TASK_LINK_APPLICATION
from tests.e2e.test_sync import Outlook
from tests.e2e.test_sync import wait_for as wait_briefly
from tests.e2e.test_tenants import consent, create
from tests.fixtures.connector import Connector

pytestmark = pytest.mark.e2e

LIST = "Tasks from the host"  # the tenant's default todo_list_name
# (task.synced/failed: the host's writes)
FROM_OUTLOOK = ("task.created", "task.updated", "task.deleted", "task.changed_in_outlook")


def wait_for(check: Any, timeout: float = 120.0) -> Any:
    """A To Do change travels Graph -> webhook -> queue -> task run -> feed; a shared 2-core machine under
    other suites' load needs the margin."""
    return wait_briefly(check, timeout=timeout)


class Org:
    def __init__(
        self, connector: Connector, tid: str, domain: str, people: dict[str, dict[str, Any]]
    ) -> None:
        self.connector, self.id, self.domain, self.people = connector, tid, domain, people
        self.outlook = Outlook(connector, tid)
        self.lists: dict[str, str] = {}

    def user(self, name: str) -> str:
        return f"{name}@{self.domain}"

    def api(self) -> httpx.Client:
        client: httpx.Client = self.connector.api()
        return client

    def list_id(self, name: str) -> str:
        if name not in self.lists:
            answer = self.outlook.http.get(f"/users/{self.user(name)}/todo/lists")
            assert answer.status_code == 200, answer.text
            found = answer.json()["value"]
            self.lists[name] = next(lst["id"] for lst in found if lst["displayName"] == LIST)
        return self.lists[name]

    def tasks_path(self, name: str) -> str:
        return f"/users/{self.user(name)}/todo/lists/{self.list_id(name)}/tasks"

    def add(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = self.outlook.http.post(self.tasks_path(name), json=body)
        assert answer.status_code == 201, answer.text
        return dict(answer.json())

    def edit(self, name: str, task_id: str, body: dict[str, Any]) -> None:
        answer = self.outlook.http.patch(f"{self.tasks_path(name)}/{task_id}", json=body)
        assert answer.status_code == 200, answer.text

    def delete(self, name: str, task_id: str) -> None:
        assert self.outlook.http.delete(f"{self.tasks_path(name)}/{task_id}").status_code == 204

    def changes(self, since: int = 0) -> list[dict[str, Any]]:
        with self.api() as api:
            answer = api.get(
                f"/api/v1/tenants/{self.domain}/changes", params={"cursor": since, "limit": 1000}
            )
        return list(answer.json()["value"])

    def cursor(self) -> int:
        return max((c["sequence"] for c in self.changes()), default=0)

    def task_changes(self, since: int, task_id: str) -> list[tuple[str, dict[str, Any]]]:
        return [
            (c["type"], c["data"])
            for c in self.changes(since)
            if c["type"] in FROM_OUTLOOK
            and (c["data"].get("task") or {}).get("id", c["data"].get("graph_task_id")) == task_id
        ]

    def staff(self, name: str) -> dict[str, Any]:
        with self.api() as api:
            listed = api.get(f"/api/v1/tenants/{self.domain}/users", params={"q": f"s-{name}"}).json()[
                "value"
            ]
        return dict(next(u for u in listed if u["staff_id"] == f"s-{name}"))

    def switch(self, name: str, on: bool) -> None:
        with self.api() as api:
            answer = api.put(
                f"/api/v1/tenants/{self.domain}/staff/s-{name}",
                json={"upn": self.user(name), "switches": {"tasks_from_outlook": on}},
            )
        assert answer.status_code == 200, answer.text


async def tasks_organisation(connector: Connector) -> tuple[Org, dict[str, str]]:
    """adele and ben with tasks switched on from Outlook; adele's list holds, before the consent, one task
    of the host's (the connector's link on it) and one of her own."""
    domain = f"tasks{uuid.uuid4().hex[:8]}.example"
    async with connector.control() as control:
        tenant = await control.create_tenant(f"Tasks {domain}", [domain], consent_policy="auto-accept")
        tid = tenant["id"]
        people = {
            name: await control.create_user(tid, f"{name}@{domain}", display_name=name.title())
            for name in ("adele", "ben")
        }
        link = {"applicationName": TASK_LINK_APPLICATION, "displayName": "Job 12", "externalId": "host-12"}
        seeded = await control.seed_tasks(
            tid,
            f"adele@{domain}",
            [{"title": "Quote for job 12", "linkedResources": [link]}, {"title": "Adele's own"}],
            list_name=LIST,
        )
    response = create(connector, {"domain": domain})
    assert response.status_code == 201, response.text
    with connector.api() as api:
        for name in people:
            body = {"upn": f"{name}@{domain}", "switches": {"tasks_from_outlook": True}}
            assert api.put(f"/api/v1/tenants/{domain}/staff/s-{name}", json=body).status_code == 200
    assert consent(connector, response.json()["consent_url"]).status_code == 200
    org = Org(connector, tid, domain, people)  # Graph as the staff's To Do: a token with the consent's roles
    with org.api() as api:

        def active() -> bool:
            return bool(api.get(f"/api/v1/tenants/{domain}").json()["state"] == "active")

        wait_for(active)
    hosts, own = seeded["value"]
    return org, {"host": hosts["id"], "own": own["id"]}


@pytest.fixture(scope="module")
async def tasks_org(connector: Connector) -> tuple[Org, dict[str, str]]:
    return await tasks_organisation(connector)


def test_migration_links_the_hosts_task_and_announces_only_the_staff_members(
    tasks_org: tuple[Org, dict[str, str]],
) -> None:
    org, seeded = tasks_org
    changes = org.changes()
    created = [c["data"]["task"]["id"] for c in changes if c["type"] == "task.created"]
    assert created == [seeded["own"]]
    migrated = {c["staff_id"]: c["data"] for c in changes if c["type"] == "user.migrated"}
    assert (migrated["s-adele"]["tasks"], migrated["s-adele"]["tasks_linked"]) == (2, 1)
    assert (migrated["s-ben"]["tasks"], migrated["s-ben"]["tasks_linked"]) == (0, 0)
    adele = org.staff("adele")["task_sync"]
    assert (adele["state"], adele["tasks"], adele["list_id"]) == ("synced", 2, org.list_id("adele"))
    since = org.cursor()
    with org.api() as api:
        assert api.post(f"/api/v1/tenants/{org.domain}/users/s-adele/resync").status_code == 202
    before = adele["last_sync_at"]
    wait_for(lambda: org.staff("adele")["task_sync"]["last_sync_at"] != before)
    assert [c for c in org.changes(since) if c["type"] in FROM_OUTLOOK] == []  # nothing twice


def test_a_staff_member_adds_edits_completes_and_deletes_tasks_in_outlook(
    tasks_org: tuple[Org, dict[str, str]],
) -> None:
    org, seeded = tasks_org
    since = org.cursor()
    made = org.add(
        "ben",
        {"title": "Call the supplier", "dueDateTime": {"dateTime": "2030-05-07T00:00:00", "timeZone": "UTC"}},
    )
    [(kind, data)] = wait_for(lambda: org.task_changes(since, made["id"]) or None)
    assert kind == "task.created" and data["task"]["title"] == "Call the supplier"
    assert data["task"]["due"] == "2030-05-07" and data["task_id"] is None
    org.edit("ben", made["id"], {"title": "Call the supplier back"})
    wait_for(lambda: len(org.task_changes(since, made["id"])) == 2)
    org.edit("ben", made["id"], {"status": "completed"})
    wait_for(lambda: len(org.task_changes(since, made["id"])) == 3)
    org.delete("ben", made["id"])
    wait_for(lambda: len(org.task_changes(since, made["id"])) == 4)
    seen = org.task_changes(since, made["id"])
    assert [k for k, _ in seen] == ["task.created", "task.updated", "task.updated", "task.deleted"]
    assert seen[1][1]["task"]["title"] == "Call the supplier back"
    assert seen[2][1]["task"]["status"] == "completed" and seen[2][1]["task"]["completed_at"]
    assert seen[3][1] == {"task": {"id": made["id"]}, "task_id": None, "reason": "deleted"}
    # the host's own task, completed in Outlook, carries the host's id; moved out of the list, says so
    org.edit("adele", seeded["host"], {"status": "completed"})
    wait_for(lambda: org.task_changes(since, seeded["host"]) or None)
    [(kind, data)] = org.task_changes(since, seeded["host"])
    assert (kind, data["task_id"], data["task"]["status"]) == ("task.updated", "host-12", "completed")


async def test_a_task_moved_to_another_list_is_deleted_with_its_reason(
    tasks_org: tuple[Org, dict[str, str]],
) -> None:
    org, _ = tasks_org
    made = org.add("ben", {"title": "Moving on"})
    wait_for(lambda: org.task_changes(0, made["id"]) or None)
    since = org.cursor()
    async with org.connector.control() as control:
        await control.move_task(org.id, org.user("ben"), made["id"], to="Personal", list_name=LIST)
    [(kind, data)] = wait_for(lambda: org.task_changes(since, made["id"]) or None)
    assert (kind, data["reason"]) == ("task.deleted", "moved")


async def test_an_expired_tasks_delta_token_reads_the_list_again_without_duplicates(
    tasks_org: tuple[Org, dict[str, str]],
) -> None:
    org, _ = tasks_org
    first = org.add("adele", {"title": "Before the expiry"})
    wait_for(lambda: org.task_changes(0, first["id"]) or None)
    since = org.cursor()
    async with org.connector.control() as control:
        await control.expire_delta_tokens(tenant_id=org.id, user=org.user("adele"))
    second = org.add("adele", {"title": "After the expiry"})
    wait_for(lambda: org.task_changes(since, second["id"]) or None)
    after = [c for c in org.changes(since) if c["type"] in FROM_OUTLOOK]
    assert [(c["type"], c["data"]["task"]["id"]) for c in after] == [("task.created", second["id"])]


def test_tasks_from_outlook_off_then_on_again(tasks_org: tuple[Org, dict[str, str]]) -> None:
    org, _ = tasks_org
    org.switch("ben", False)
    since = org.cursor()
    made = org.add("ben", {"title": "While switched off"})
    before = org.staff("ben")["task_sync"]
    wait_for(lambda: org.staff("ben")["task_sync"] == before)  # not read: the state stays
    org.switch("ben", True)
    [(kind, _)] = wait_for(lambda: org.task_changes(since, made["id"]) or None)
    assert kind == "task.created"
    org.switch("ben", True)  # on while on: nothing more
    later = org.add("ben", {"title": "Switched on"})
    wait_for(lambda: org.task_changes(since, later["id"]) or None)
    assert len(org.task_changes(since, made["id"])) == 1


def test_the_hosts_own_task_writes_never_come_back_and_an_outlook_edit_of_one_is_put_back(
    tasks_org: tuple[Org, dict[str, str]],
) -> None:
    org, _ = tasks_org
    since = org.cursor()
    task_id = f"host-{uuid.uuid4().hex[:8]}"

    def put(revision: int, **body: Any) -> dict[str, Any]:
        with org.api() as api:
            answer = api.put(
                f"/api/v1/tenants/{org.domain}/tasks/{task_id}",
                json={"staff_id": "s-ben", "title": "Host task", **body},
            )
            assert answer.status_code == 202, answer.text

            def settled() -> dict[str, Any] | None:
                got = api.get(f"/api/v1/tenants/{org.domain}/tasks/{task_id}").json()
                return got if got["revision"] >= revision and got["state"] != "pending" else None

            return dict(wait_for(settled))

    made = put(1)
    assert made["state"] == "synced", made
    graph_id = made["graph_task_id"]
    before = org.staff("ben")["task_sync"]["last_sync_at"]
    put(2, title="Host task, renamed", checklist=[{"id": "c1", "title": "Step one", "checked": False}])
    # The list's run reads the connector's write (its echo) before Ben edits: an edit landing before that
    # read would be taken for the echo (the window DESIGN.md names).
    wait_for(lambda: org.staff("ben")["task_sync"]["last_sync_at"] != before)
    time.sleep(2)
    org.edit("ben", graph_id, {"title": "Renamed by Ben"})  # Ben's own edit of the host's task
    [(kind, data)] = wait_for(lambda: org.task_changes(since, graph_id) or None)
    assert (kind, data["task_id"], data["task"]["title"]) == (
        "task.changed_in_outlook",
        task_id,
        "Renamed by Ben",
    )
    assert data["resolution"] == "reverted"  # host wins, the tenant's default: the host's revision is back

    def title() -> str:
        return str(org.outlook.http.get(f"{org.tasks_path('ben')}/{graph_id}").json()["title"])

    wait_for(lambda: title() == "Host task, renamed")
    later = org.add("ben", {"title": "A marker after the host's writes"})
    wait_for(lambda: org.task_changes(since, later["id"]) or None)
    assert len(org.task_changes(since, graph_id)) == 1  # the connector's writes announced nothing
