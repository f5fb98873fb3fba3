"""Microsoft To Do through msgraph-sdk: lists and tasks CRUD, tasks delta, expired delta tokens, linked
resources and checklist items, dates answered in UTC, and the faults the connector's tests need."""

from __future__ import annotations

import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.models.checklist_item import ChecklistItem
from msgraph.generated.models.date_time_time_zone import DateTimeTimeZone
from msgraph.generated.models.importance import Importance
from msgraph.generated.models.linked_resource import LinkedResource
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.task_status import TaskStatus
from msgraph.generated.models.todo_task import TodoTask
from msgraph.generated.models.todo_task_list import TodoTaskList
from msgraph.generated.users.item.todo.lists.item.tasks.tasks_request_builder import TasksRequestBuilder

pytestmark = pytest.mark.contract

USER = "nestor.wilke@contoso.example"


def lists(connector):
    return connector.graph.users.by_user_id(USER).todo.lists


async def new_list(connector, name: str) -> str:
    created = await lists(connector).post(TodoTaskList(display_name=name))
    return created.id


async def test_default_list_exists_and_lists_crud(connector):
    existing = await lists(connector).get()
    assert any(lst.wellknown_list_name and lst.display_name == "Tasks" for lst in existing.value)
    list_id = await new_list(connector, "Bookings")
    renamed = (
        await lists(connector).by_todo_task_list_id(list_id).patch(TodoTaskList(display_name="Bookings 2"))
    )
    assert renamed.display_name == "Bookings 2"
    await lists(connector).by_todo_task_list_id(list_id).delete()
    with pytest.raises(ODataError) as err:
        await lists(connector).by_todo_task_list_id(list_id).get()
    assert err.value.response_status_code == 404


async def test_tasks_crud(connector):
    list_id = await new_list(connector, "Follow-ups")
    tasks = lists(connector).by_todo_task_list_id(list_id).tasks
    created = await tasks.post(TodoTask(title="Send the quote", importance=Importance.High))
    assert created.status == TaskStatus.NotStarted
    assert created.importance == Importance.High
    updated = await tasks.by_todo_task_id(created.id).patch(TodoTask(status=TaskStatus.Completed))
    assert updated.status == TaskStatus.Completed
    assert updated.completed_date_time is not None
    fetched = await tasks.by_todo_task_id(created.id).get()
    assert fetched.title == "Send the quote"
    await tasks.by_todo_task_id(created.id).delete()
    assert (await tasks.get()).value == []


async def test_invalid_status_is_400(connector):
    list_id = await new_list(connector, "Invalid")
    response = await connector.http.post(f"users/{USER}/todo/lists/{list_id}/tasks", json={"status": "done"})
    assert response.status_code == 400


async def test_tasks_delta_initial_round_then_changes_and_removals(connector):
    list_id = await new_list(connector, "Delta")
    tasks = lists(connector).by_todo_task_list_id(list_id).tasks
    first = await tasks.post(TodoTask(title="one"))
    second = await tasks.post(TodoTask(title="two"))
    response = await connector.http.get(
        f"users/{USER}/todo/lists/{list_id}/tasks/delta()", headers={"Prefer": "odata.maxpagesize=1"}
    )
    page = response.json()
    seen = [t["id"] for t in page["value"]]
    while "@odata.nextLink" in page:
        page = (await connector.http.get(page["@odata.nextLink"])).json()
        seen.extend(t["id"] for t in page["value"])
    assert seen == [first.id, second.id]
    delta_link = page["@odata.deltaLink"]
    await tasks.by_todo_task_id(first.id).patch(TodoTask(title="one, renamed"))
    await tasks.by_todo_task_id(second.id).delete()
    third = await tasks.post(TodoTask(title="three"))
    changes = (await connector.http.get(delta_link)).json()
    by_id = {t["id"]: t for t in changes["value"]}
    assert by_id[first.id]["title"] == "one, renamed"
    assert by_id[second.id]["@removed"] == {"reason": "deleted"}
    assert by_id[third.id]["title"] == "three"
    again = (await connector.http.get(changes["@odata.deltaLink"])).json()
    assert again["value"] == []


async def test_tasks_delta_through_the_sdk(connector):
    list_id = await new_list(connector, "SDK delta")
    tasks = lists(connector).by_todo_task_list_id(list_id).tasks
    await tasks.post(TodoTask(title="visible"))
    result = await tasks.delta.get()
    assert [t.title for t in result.value] == ["visible"]
    assert result.odata_delta_link


async def test_expired_delta_tokens_are_410_sync_state_not_found(connector, control):
    list_id = await new_list(connector, "Expiring")
    page = (await connector.http.get(f"users/{USER}/todo/lists/{list_id}/tasks/delta")).json()
    await control.expire_delta_tokens(tenant_id=connector.tenant_id, user=USER)
    expired = await connector.http.get(page["@odata.deltaLink"])
    assert expired.status_code == 410
    assert expired.json()["error"]["code"] == "SyncStateNotFound"


async def test_linked_resources_made_inline_read_by_expand_and_filtered_on(connector):
    list_id = await new_list(connector, "Linked")
    tasks = lists(connector).by_todo_task_list_id(list_id).tasks
    link = LinkedResource(
        application_name="Bookings",
        display_name="Task 17",
        external_id="task-17",
        web_url="https://h.example/17",
    )
    created = await tasks.post(TodoTask(title="linked", linked_resources=[link]))
    assert [r.external_id for r in created.linked_resources] == ["task-17"]
    assert created.linked_resources[0].id
    await tasks.post(TodoTask(title="other"))
    plain = await tasks.by_todo_task_id(created.id).get()
    assert not plain.linked_resources  # a navigation property: only with $expand
    config = RequestConfiguration(
        query_parameters=TasksRequestBuilder.TasksRequestBuilderGetQueryParameters(
            filter="linkedResources/any(r: r/externalId eq 'task-17' and r/applicationName eq 'Bookings')",
            expand=["linkedResources"],
        )
    )
    found = await tasks.get(request_configuration=config)
    assert [(t.id, t.linked_resources[0].web_url) for t in found.value] == [
        (created.id, "https://h.example/17")
    ]
    listed = await tasks.by_todo_task_id(created.id).linked_resources.get()
    assert [r.application_name for r in listed.value] == ["Bookings"]


async def test_linked_resources_are_not_written_through_the_task_patch(connector):
    list_id = await new_list(connector, "No patch")
    created = await lists(connector).by_todo_task_list_id(list_id).tasks.post(TodoTask(title="t"))
    response = await connector.http.patch(
        f"users/{USER}/todo/lists/{list_id}/tasks/{created.id}",
        json={"linkedResources": [{"applicationName": "x", "displayName": "y"}]},
    )
    assert response.status_code == 400


async def test_checklist_items_inline_and_one_by_one(connector):
    list_id = await new_list(connector, "Checklist")
    tasks = lists(connector).by_todo_task_list_id(list_id).tasks
    created = await tasks.post(
        TodoTask(title="pack", checklist_items=[ChecklistItem(display_name="tent", is_checked=True)])
    )
    items = tasks.by_todo_task_id(created.id).checklist_items
    added = await items.post(ChecklistItem(display_name="stove"))
    await items.by_checklist_item_id(added.id).patch(ChecklistItem(is_checked=True))
    listed = await items.get()
    assert [(i.display_name, i.is_checked) for i in listed.value] == [("tent", True), ("stove", True)]
    assert all(i.checked_date_time is not None for i in listed.value)
    await items.by_checklist_item_id(added.id).delete()
    assert [i.display_name for i in (await items.get()).value] == ["tent"]


@pytest.mark.parametrize(
    ("zone", "utc"),
    [("Line Islands Standard Time", "2026-03-09T10:00:00"), ("UTC-11", "2026-03-10T11:00:00")],
)
async def test_dates_are_answered_as_the_utc_instant_they_name(connector, zone, utc):
    list_id = await new_list(connector, f"Zones {zone}")
    tasks = lists(connector).by_todo_task_list_id(list_id).tasks
    due = DateTimeTimeZone(date_time="2026-03-10T00:00:00", time_zone=zone)
    created = await tasks.post(TodoTask(title="due", due_date_time=due))
    fetched = await tasks.by_todo_task_id(created.id).get()
    assert fetched.due_date_time.time_zone == "UTC"
    assert fetched.due_date_time.date_time.startswith(utc)


async def test_unknown_time_zone_is_400(connector):
    list_id = await new_list(connector, "Bad zone")
    response = await connector.http.post(
        f"users/{USER}/todo/lists/{list_id}/tasks",
        json={"title": "t", "dueDateTime": {"dateTime": "2026-03-10T00:00:00", "timeZone": "Mars/Olympus"}},
    )
    assert response.status_code == 400


async def test_a_503_after_the_create_took_effect_leaves_the_task_findable(connector, control):
    list_id = await new_list(connector, "Lost answers")
    await control.add_fault(
        status=503, method="POST", path=r"/todo/lists/[^/]+/tasks$", when="after", count=1
    )
    response = await connector.http.post(
        f"users/{USER}/todo/lists/{list_id}/tasks",
        json={
            "title": "made",
            "linkedResources": [{"applicationName": "A", "displayName": "d", "externalId": "e1"}],
        },
    )
    assert response.status_code == 503
    found = await connector.http.get(
        f"users/{USER}/todo/lists/{list_id}/tasks",
        params={"$filter": "linkedResources/any(r: r/externalId eq 'e1')"},
    )
    assert [t["title"] for t in found.json()["value"]] == ["made"]


async def test_a_list_that_cannot_be_created(connector, control):
    await control.add_fault(status=403, method="POST", path=r"/todo/lists$", mailbox=USER, count=1)
    with pytest.raises(ODataError) as err:
        await lists(connector).post(TodoTaskList(display_name="Refused"))
    assert err.value.response_status_code == 403
    names = [lst.display_name for lst in (await lists(connector).get()).value]
    assert "Refused" not in names
