"""What the connector's Outlook-to-host half of To Do depends on, through msgraph-sdk: tasks delta paging
with its tokens and linked resources, removals (deleted, moved to another list), expired tokens, and
`todoTask` subscriptions with application permissions (their notifications and lifecycle)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.models.linked_resource import LinkedResource
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.subscription import Subscription
from msgraph.generated.models.task_status import TaskStatus
from msgraph.generated.models.todo_task import TodoTask
from msgraph.generated.models.todo_task_list import TodoTaskList
from msgraph.generated.users.item.todo.lists.item.tasks.delta.delta_request_builder import (
    DeltaRequestBuilder,
)

pytestmark = pytest.mark.contract

USER = "lynne.robbins@contoso.example"


def lists(connector):
    return connector.graph.users.by_user_id(USER).todo.lists


async def new_list(connector, name: str) -> str:
    return (await lists(connector).post(TodoTaskList(display_name=name))).id


async def read_round(connector, list_id: str, link: str | None = None, *, page: int = 2):
    """One whole delta round through the SDK: (tasks in order, the delta link, requests)."""
    tasks = lists(connector).by_todo_task_list_id(list_id).tasks
    config = RequestConfiguration(
        query_parameters=DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(expand=["linkedResources"])
    )
    config.headers.add("Prefer", f"odata.maxpagesize={page}")
    answer = await (
        tasks.delta.with_url(link).get() if link else tasks.delta.get(request_configuration=config)
    )
    seen, requests = list(answer.value), 1
    while answer.odata_next_link:  # the links carry the options and the page size
        answer = await tasks.delta.with_url(answer.odata_next_link).get()
        seen += answer.value
        requests += 1
    return seen, answer.odata_delta_link, requests


def removed(task: TodoTask) -> dict | None:
    return (task.additional_data or {}).get("@removed")


async def test_a_round_pages_with_skiptokens_and_ends_with_a_delta_link_carrying_the_expand(connector):
    list_id = await new_list(connector, "Paged")
    tasks = lists(connector).by_todo_task_list_id(list_id).tasks
    link = LinkedResource(application_name="Calendar connector", display_name="Job 7", external_id="T-7")
    made = [
        await tasks.post(TodoTask(title=f"task {i}", linked_resources=[link] if i == 0 else None))
        for i in range(5)
    ]
    seen, delta_link, requests = await read_round(connector, list_id)
    assert [t.id for t in seen] == [t.id for t in made]
    assert requests == 3  # five tasks, two a page
    assert "$deltatoken=" in delta_link
    assert [(r.application_name, r.external_id) for r in seen[0].linked_resources] == [
        ("Calendar connector", "T-7")
    ]
    # the next round from the delta link: only what changed, still expanded (the link keeps the options)
    await tasks.by_todo_task_id(made[0].id).patch(TodoTask(status=TaskStatus.Completed))
    changed, _, _ = await read_round(connector, list_id, delta_link)
    assert [t.id for t in changed] == [made[0].id]
    assert changed[0].status == TaskStatus.Completed
    assert changed[0].linked_resources[0].external_id == "T-7"


async def test_deleted_and_moved_tasks_are_removed_with_their_reasons(connector, control):
    list_id = await new_list(connector, "Removals")
    tasks = lists(connector).by_todo_task_list_id(list_id).tasks
    gone, moving = await tasks.post(TodoTask(title="gone")), await tasks.post(TodoTask(title="moving"))
    _, delta_link, _ = await read_round(connector, list_id)
    await tasks.by_todo_task_id(gone.id).delete()
    moved = await control.move_task(
        connector.tenant_id, USER, moving.id, to="Elsewhere", list_name="Removals"
    )
    changes, _, _ = await read_round(connector, list_id, delta_link)
    assert {t.id: removed(t) for t in changes} == {
        gone.id: {"reason": "deleted"},
        moving.id: {"reason": "changed"},
    }
    assert moved["task"]["id"] != moving.id and moved["task"]["title"] == "moving"
    there, _, _ = await read_round(connector, moved["list_id"])
    assert [t.title for t in there] == ["moving"]


async def test_a_skiptoken_from_a_round_before_expiry_is_410_sync_state_not_found(connector, control):
    list_id = await new_list(connector, "Expiring mid-round")
    tasks = lists(connector).by_todo_task_list_id(list_id).tasks
    for i in range(3):
        await tasks.post(TodoTask(title=f"t{i}"))
    config = RequestConfiguration()
    config.headers.add("Prefer", "odata.maxpagesize=1")
    first = await tasks.delta.get(request_configuration=config)
    await control.expire_delta_tokens(tenant_id=connector.tenant_id, user=USER)
    with pytest.raises(ODataError) as err:
        await tasks.delta.with_url(first.odata_next_link).get()
    assert err.value.response_status_code == 410
    assert err.value.error.code == "SyncStateNotFound"


async def test_task_subscriptions_take_application_permissions_and_notify_each_change(connector, receiver):
    list_id = await new_list(connector, "Watched")
    uid = (await connector.graph.users.by_user_id(USER).get()).id
    sub = await connector.graph.subscriptions.post(
        Subscription(
            change_type="created,updated,deleted",
            notification_url=receiver.url,
            lifecycle_notification_url=receiver.lifecycle_url,
            resource=f"users/{uid}/todo/lists/{list_id}/tasks",
            expiration_date_time=datetime.now(UTC) + timedelta(minutes=4_200),
            client_state="tasks-state",
        )
    )
    tasks = lists(connector).by_todo_task_list_id(list_id).tasks
    task = await tasks.post(TodoTask(title="watched"))
    await tasks.by_todo_task_id(task.id).patch(TodoTask(title="watched, edited"))
    await tasks.by_todo_task_id(task.id).delete()
    await receiver.wait_for(lambda: len(receiver.notifications) >= 3)
    assert [n["changeType"] for n in receiver.notifications] == ["created", "updated", "deleted"]
    assert {n["subscriptionId"] for n in receiver.notifications} == {sub.id}
    assert {n["clientState"] for n in receiver.notifications} == {"tasks-state"}
    assert receiver.notifications[0]["resource"] == f"Users/{uid}/todo/lists/{list_id}/tasks/{task.id}"
    # another list's changes are not this subscription's
    other = await new_list(connector, "Unwatched")
    await lists(connector).by_todo_task_list_id(other).tasks.post(TodoTask(title="elsewhere"))
    await asyncio.sleep(0.5)
    assert len(receiver.notifications) == 3


async def test_a_removed_task_subscription_is_gone_without_a_lifecycle_notification(
    connector, receiver, control
):
    """subscriptionRemoved and missed are documented for Outlook messages, events and contacts only."""
    list_id = await new_list(connector, "Lifecycle")
    uid = (await connector.graph.users.by_user_id(USER).get()).id
    sub = await connector.graph.subscriptions.post(
        Subscription(
            change_type="created,updated,deleted",
            notification_url=receiver.url,
            lifecycle_notification_url=receiver.lifecycle_url,
            resource=f"users/{uid}/todo/lists/{list_id}/tasks",
            expiration_date_time=datetime.now(UTC) + timedelta(minutes=120),
            client_state="tasks-state",
        )
    )
    await control.advance_clock(minutes=110)  # reauthorizationRequired: every resource
    await receiver.wait_for(lambda: len(receiver.lifecycle) >= 1)
    assert [e["lifecycleEvent"] for e in receiver.lifecycle] == ["reauthorizationRequired"]
    answer = await control.remove_subscription(sub.id)
    assert answer == {"removed": sub.id, "lifecycle_notified": False}
    await asyncio.sleep(0.5)
    assert [e["lifecycleEvent"] for e in receiver.lifecycle] == ["reauthorizationRequired"]
    assert sub.id not in [s["id"] for s in await control.subscriptions()]
