"""Microsoft To Do through msgraph-sdk: lists and tasks CRUD, tasks delta, expired delta tokens."""

from __future__ import annotations

import pytest
from msgraph.generated.models.importance import Importance
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.task_status import TaskStatus
from msgraph.generated.models.todo_task import TodoTask
from msgraph.generated.models.todo_task_list import TodoTaskList

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
