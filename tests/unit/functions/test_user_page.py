"""A user's own page, as the API and the console answer it: the To Do list beside the calendar's
subscription (the list's name and id, its task subscription and that one's expiry)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from shared.service import jobs
from shared.service.job_handlers import run_job
from tests.unit.functions.host_api import TENANT, HostApi, host_api

pytestmark = pytest.mark.unit


async def _migrated_with_tasks() -> HostApi:
    api = await host_api()
    world = api.world
    user = await world.users.get(TENANT, "s1")
    assert user is not None
    switches = user.staff.switches.changed({"tasks_from_outlook": True})
    await world.users.save(replace(user, staff=replace(user.staff, switches=switches)))
    await world.jobs.enqueue([jobs.migrate_user(TENANT, "s1")])
    for _ in range(20):
        batch = [j for j in world.jobs.take() if j.queue != jobs.DELIVERY_QUEUE]
        for job in batch:
            await run_job(world.services, job)
    return api


@pytest.mark.parametrize(
    "path", ["v1/tenants/contoso.example/users/s1", "console/tenants/contoso.example/users/s1"]
)
async def test_the_users_page_shows_the_to_do_list_and_its_task_subscription(path: str) -> None:
    api = await _migrated_with_tasks()
    user = await api.world.users.get(TENANT, "s1")
    assert user is not None and user.task_sync.subscription_id and user.task_sync.list_id

    answer = await api.call("GET", path)

    assert answer.status == 200
    todo = answer.json()["todo_list"]
    assert todo["list_id"] == user.task_sync.list_id
    assert todo["name"] == user.todo_list_name
    assert todo["subscription"]["subscription_id"] == user.task_sync.subscription_id
    assert todo["subscription"]["expires_at"]
    assert answer.json()["subscription"]["subscription_id"] == user.subscription_id  # the calendar's


async def test_a_user_without_a_list_shows_none() -> None:
    api = await host_api()
    answer = await api.call("GET", "v1/tenants/contoso.example/users/s1")
    assert answer.status == 200 and answer.json()["todo_list"] is None
