"""Subscriptions through msgraph-sdk; handshake, notification delivery and lifecycle events over real
HTTP to a receiver on a loopback port."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.subscription import Subscription
from msgraph.generated.models.todo_task import TodoTask

from m365emulator.odata import parse_datetime

pytestmark = pytest.mark.contract

USER = "megan.bowen@contoso.example"


def in_minutes(minutes: float) -> datetime:
    return datetime.now(UTC) + timedelta(minutes=minutes)


async def user_id(connector, upn: str = USER) -> str:
    return (await connector.graph.users.by_user_id(upn).get()).id


async def events_subscription(connector, receiver, *, minutes: float = 2880, state: str = "s3cr3t", **extra):
    uid = await user_id(connector)
    body = Subscription(
        change_type="created,updated,deleted",
        notification_url=receiver.url,
        lifecycle_notification_url=receiver.lifecycle_url,
        resource=f"users/{uid}/events",
        expiration_date_time=in_minutes(minutes),
        client_state=state,
        **extra,
    )
    return await connector.graph.subscriptions.post(body)


async def task_list(connector, upn: str = USER) -> str:
    lists = await connector.graph.users.by_user_id(upn).todo.lists.get()
    return next(lst.id for lst in lists.value if lst.display_name == "Tasks")


async def tasks_subscription(connector, receiver, list_id: str, *, minutes: float = 600):
    uid = await user_id(connector)
    body = Subscription(
        change_type="created,updated,deleted",
        notification_url=receiver.url,
        lifecycle_notification_url=receiver.lifecycle_url,
        resource=f"/users/{uid}/todo/lists/{list_id}/tasks",
        expiration_date_time=in_minutes(minutes),
        client_state="todo-state",
    )
    return await connector.graph.subscriptions.post(body)


async def add_task(connector, list_id: str, title: str) -> TodoTask:
    return (
        await connector.graph.users.by_user_id(USER)
        .todo.lists.by_todo_task_list_id(list_id)
        .tasks.post(TodoTask(title=title))
    )


# --- create, validation handshake ------------------------------------------------------------------


async def test_create_runs_the_handshake_on_both_urls(connector, receiver):
    sub = await events_subscription(connector, receiver)
    assert sub.id
    assert sub.client_state == "s3cr3t"
    assert sub.application_id == connector.emulator.client_id
    paths = sorted(v["path"] for v in receiver.validations)
    assert paths == ["/lifecycle", "/notify"]
    token = receiver.validations[0]["token"]
    assert " " in token  # opaque and URL-encoded on the wire; the receiver got it decoded
    assert receiver.validations[0]["content_type"].startswith("text/plain")


async def test_client_state_is_not_returned_by_get_or_list(connector, receiver):
    sub = await events_subscription(connector, receiver)
    fetched = await connector.graph.subscriptions.by_subscription_id(sub.id).get()
    assert fetched.client_state is None
    listed = await connector.graph.subscriptions.get()
    assert [s.id for s in listed.value] == [sub.id]
    assert listed.value[0].client_state is None


@pytest.mark.parametrize(("echo", "message"), [("wrong", "exactly match"), ("error", "200 OK")])
async def test_failed_handshake_is_400_and_creates_nothing(connector, receiver, echo, message):
    receiver.echo = echo
    with pytest.raises(ODataError) as err:
        await events_subscription(connector, receiver)
    assert err.value.response_status_code == 400
    assert message in err.value.error.message
    assert (await connector.graph.subscriptions.get()).value == []


async def test_handshake_timeout_is_400(connector, receiver, control):
    await control.set_settings(validation_timeout_s=0.3)
    receiver.echo = "slow"
    receiver.slow_s = 1.0
    with pytest.raises(ODataError) as err:
        await events_subscription(connector, receiver)
    assert err.value.response_status_code == 400
    assert "timed out" in err.value.error.message


async def test_short_lifetimes_are_raised_to_45_minutes(connector, receiver):
    sub = await events_subscription(connector, receiver, minutes=5)
    lifetime = sub.expiration_date_time - datetime.now(UTC)
    assert timedelta(minutes=44) < lifetime <= timedelta(minutes=45, seconds=5)


@pytest.mark.parametrize(("kind", "minutes"), [("events", 10_071), ("events", 10_080), ("todo", 4_231)])
async def test_lifetimes_beyond_the_maximum_are_refused(connector, receiver, kind, minutes):
    with pytest.raises(ODataError) as err:
        if kind == "events":
            await events_subscription(connector, receiver, minutes=minutes)
        else:
            await tasks_subscription(connector, receiver, await task_list(connector), minutes=minutes)
    assert err.value.response_status_code == 400
    assert err.value.error.code == "ExtensionError"


async def test_an_event_lifetime_of_10080_minutes_is_refused_as_graph_does(connector, receiver):
    """Graph has been seen refusing a full week: "Subscription expiration can only be 10070 minutes in the
    future." (the documentation says "under 7 days")."""
    with pytest.raises(ODataError) as err:
        await events_subscription(connector, receiver, minutes=10_080)
    assert err.value.response_status_code == 400
    assert err.value.error.message == "Subscription expiration can only be 10070 minutes in the future."


@pytest.mark.parametrize("minutes", [-1, -60 * 24])
async def test_a_subscription_expiration_in_the_past_is_refused(connector, receiver, minutes):
    with pytest.raises(ODataError) as err:
        await events_subscription(connector, receiver, minutes=minutes)
    assert err.value.response_status_code == 400
    assert "expiration" in err.value.error.message.lower()
    sub = await events_subscription(connector, receiver, minutes=60)
    with pytest.raises(ODataError) as err:
        await connector.graph.subscriptions.by_subscription_id(sub.id).patch(
            Subscription(expiration_date_time=in_minutes(minutes))
        )
    assert err.value.response_status_code == 400
    kept = await connector.graph.subscriptions.by_subscription_id(sub.id).get()
    assert kept.expiration_date_time > in_minutes(55)  # the refused renewal changed nothing


async def test_the_connectors_requested_lifetime_is_accepted(connector, receiver):
    from shared.service.subscriptions import LIFETIME

    sub = await events_subscription(connector, receiver, minutes=LIFETIME.total_seconds() / 60)
    assert sub.expiration_date_time > datetime.now(UTC) + LIFETIME - timedelta(minutes=1)


async def test_maximum_lifetimes_are_accepted(connector, receiver):
    sub = await events_subscription(connector, receiver, minutes=10_069)
    assert sub.expiration_date_time > in_minutes(10_060)
    todo = await tasks_subscription(connector, receiver, await task_list(connector), minutes=4_229)
    assert todo.expiration_date_time > in_minutes(4_220)


async def test_duplicate_subscription_is_409(connector, receiver):
    await events_subscription(connector, receiver)
    with pytest.raises(ODataError) as err:
        await events_subscription(connector, receiver)
    assert err.value.response_status_code == 409


async def test_client_state_longer_than_128_is_400(connector, receiver):
    with pytest.raises(ODataError) as err:
        await events_subscription(connector, receiver, state="x" * 129)
    assert err.value.response_status_code == 400


async def test_me_is_not_usable_app_only(connector, receiver):
    response = await connector.http.post(
        "subscriptions",
        json={
            "changeType": "created",
            "notificationUrl": receiver.url,
            "resource": "/me/events",
            "expirationDateTime": in_minutes(60).isoformat(),
        },
    )
    assert response.status_code == 400


async def test_quota_per_mailbox(connector, receiver, control):
    await control.set_settings(max_subscriptions_per_mailbox=1)
    await events_subscription(connector, receiver)
    with pytest.raises(ODataError) as err:
        uid = await user_id(connector)
        await connector.graph.subscriptions.post(
            Subscription(
                change_type="created",
                notification_url=receiver.url,
                resource=f"users/{uid}/events",
                expiration_date_time=in_minutes(60),
            )
        )
    assert err.value.response_status_code == 403


async def test_subscription_on_a_mailbox_less_user_is_refused(connector, receiver):
    response = await connector.http.post(
        "subscriptions",
        json={
            "changeType": "created",
            "notificationUrl": receiver.url,
            "resource": "users/it.admin@contoso.example/events",
            "expirationDateTime": in_minutes(60).isoformat(),
        },
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "ExtensionError"


async def test_renew_delete_and_get_after_delete(connector, receiver):
    sub = await events_subscription(connector, receiver, minutes=60)
    renewed = await connector.graph.subscriptions.by_subscription_id(sub.id).patch(
        Subscription(expiration_date_time=in_minutes(4000))
    )
    assert renewed.expiration_date_time > in_minutes(3990)
    await connector.graph.subscriptions.by_subscription_id(sub.id).delete()
    with pytest.raises(ODataError) as err:
        await connector.graph.subscriptions.by_subscription_id(sub.id).get()
    assert err.value.response_status_code == 404


async def test_renewing_past_the_maximum_is_refused(connector, receiver):
    sub = await events_subscription(connector, receiver, minutes=60)
    with pytest.raises(ODataError) as err:
        await connector.graph.subscriptions.by_subscription_id(sub.id).patch(
            Subscription(expiration_date_time=in_minutes(20_000))
        )
    assert err.value.response_status_code == 400


# --- notifications ---------------------------------------------------------------------------------


async def test_task_changes_are_posted_with_client_state(connector, receiver):
    list_id = await task_list(connector)
    sub = await tasks_subscription(connector, receiver, list_id)
    task = await add_task(connector, list_id, "Call Litware")
    await receiver.wait_for(lambda: len(receiver.notifications) >= 1)
    [note] = receiver.notifications
    assert note["subscriptionId"] == sub.id
    assert note["clientState"] == "todo-state"
    assert note["changeType"] == "created"
    assert note["tenantId"] == connector.tenant_id
    assert note["resourceData"]["id"] == task.id
    assert parse_datetime(note["subscriptionExpirationDateTime"]) == sub.expiration_date_time


async def test_event_notifications_have_the_documented_shape(connector, receiver, control):
    sub = await events_subscription(connector, receiver)
    uid = await user_id(connector)
    sent = await control.emit_change(connector.tenant_id, USER, "updated", "AAMkAGevent=", etag='W/"abc"')
    assert sent == 1
    await receiver.wait_for(lambda: len(receiver.notifications) >= 1)
    [note] = receiver.notifications
    assert note["resource"] == f"Users/{uid}/Events/AAMkAGevent="
    assert note["resourceData"] == {
        "@odata.type": "#Microsoft.Graph.Event",
        "@odata.id": f"Users/{uid}/Events/AAMkAGevent=",
        "@odata.etag": 'W/"abc"',
        "id": "AAMkAGevent=",
    }
    assert note["clientState"] == "s3cr3t"
    assert note["subscriptionId"] == sub.id


async def test_notifications_that_bunch_up_share_one_post(connector, receiver, control):
    await control.set_settings(delivery_batch_window_ms=400)
    list_id = await task_list(connector)
    await tasks_subscription(connector, receiver, list_id)
    for title in ("one", "two", "three"):
        await add_task(connector, list_id, title)
    await receiver.wait_for(lambda: len(receiver.notifications) >= 3)
    assert len(receiver.posts) < 3
    assert max(len(p) for p in receiver.posts) >= 2


async def test_failed_deliveries_are_retried(connector, receiver, control):
    await control.set_settings(delivery_retry_base_s=0.05)
    list_id = await task_list(connector)
    await tasks_subscription(connector, receiver, list_id)
    receiver.fail_next = 2
    await add_task(connector, list_id, "retry me")
    await receiver.wait_for(lambda: len(receiver.notifications) >= 1)
    stats = (await control.stats())["notifications"]
    assert stats["failed"] == 2
    assert stats["retried"] == 2
    assert stats["sent"] == 1


async def test_slow_endpoint_counts_as_failed_and_is_retried(connector, receiver, control):
    await control.set_settings(delivery_retry_base_s=0.05, delivery_timeout_s=0.2)
    list_id = await task_list(connector)
    await tasks_subscription(connector, receiver, list_id)
    receiver.slow_next = 1
    receiver.slow_s = 0.6
    await add_task(connector, list_id, "slow")
    await receiver.wait_for(lambda: len(receiver.notifications) >= 2)
    stats = (await control.stats())["notifications"]
    assert stats["retried"] >= 1
    assert stats["sent"] >= 1


async def test_drop_duplicate_and_reorder_rules(connector, receiver, control):
    list_id = await task_list(connector)
    await tasks_subscription(connector, receiver, list_id)
    await control.add_notification_rule("drop", count=1)
    await add_task(connector, list_id, "dropped")
    await control.add_notification_rule("duplicate", count=1)
    await add_task(connector, list_id, "doubled")
    await receiver.wait_for(lambda: len(receiver.notifications) >= 2)
    assert (await control.stats())["notifications"]["dropped"] == 1
    ids = [n["resourceData"]["id"] for n in receiver.notifications]
    assert len(ids) == 2 and ids[0] == ids[1]
    receiver.notifications.clear()
    await control.add_notification_rule("reorder", count=2)
    first = await add_task(connector, list_id, "first")
    second = await add_task(connector, list_id, "second")
    await receiver.wait_for(lambda: len(receiver.notifications) >= 2)
    assert [n["resourceData"]["id"] for n in receiver.notifications] == [second.id, first.id]
    counted = (await control.stats())["notifications"]
    assert (counted["dropped"], counted["duplicated"], counted["reordered"]) == (1, 1, 2)


# --- lifecycle -------------------------------------------------------------------------------------


async def test_reauthorization_required_before_expiry_then_expired_subscriptions_go(
    connector, receiver, control
):
    sub = await events_subscription(connector, receiver, minutes=120)
    await control.advance_clock(minutes=110)
    await receiver.wait_for(lambda: len(receiver.lifecycle) >= 1)
    [event] = receiver.lifecycle
    assert event["lifecycleEvent"] == "reauthorizationRequired"
    assert event["subscriptionId"] == sub.id
    assert event["clientState"] == "s3cr3t"
    await control.advance_clock(minutes=11)
    with pytest.raises(ODataError) as err:
        await connector.graph.subscriptions.by_subscription_id(sub.id).get()
    assert err.value.response_status_code in (401, 404)


async def test_renewing_after_reauthorization_rearms_it(connector, receiver, control):
    sub = await events_subscription(connector, receiver, minutes=60)
    await control.advance_clock(minutes=50)
    await receiver.wait_for(lambda: len(receiver.lifecycle) == 1)
    await connector.graph.subscriptions.by_subscription_id(sub.id).patch(
        Subscription(expiration_date_time=datetime.now(UTC) + timedelta(minutes=50 + 600))
    )
    await control.advance_clock(minutes=60)
    assert len(receiver.lifecycle) == 1


async def test_removed_subscription_tells_the_lifecycle_url(connector, receiver, control):
    sub = await events_subscription(connector, receiver)
    await control.remove_subscription(sub.id)
    await receiver.wait_for(lambda: len(receiver.lifecycle) >= 1)
    assert receiver.lifecycle[0]["lifecycleEvent"] == "subscriptionRemoved"
    with pytest.raises(ODataError):
        await connector.graph.subscriptions.by_subscription_id(sub.id).get()


async def test_a_subscription_can_be_lost_silently(connector, receiver, control):
    sub = await events_subscription(connector, receiver)
    answer = await control.remove_subscription(sub.id, lifecycle=False)
    assert answer == {"removed": sub.id, "lifecycle_notified": False}
    with pytest.raises(ODataError) as err:
        await connector.graph.subscriptions.by_subscription_id(sub.id).get()
    assert err.value.response_status_code == 404
    assert sub.id not in [s.id for s in (await connector.graph.subscriptions.get()).value]
    await control.advance_clock(seconds=2)  # a lifecycle check runs; still nothing is sent
    await asyncio.sleep(0.5)  # longer than the delivery batch window
    assert receiver.lifecycle == []


async def test_missed_lifecycle_event_keeps_the_subscription(connector, receiver, control):
    sub = await events_subscription(connector, receiver)
    await control.send_lifecycle(sub.id, "missed")
    await receiver.wait_for(lambda: len(receiver.lifecycle) >= 1)
    assert receiver.lifecycle[0]["lifecycleEvent"] == "missed"
    assert (await connector.graph.subscriptions.by_subscription_id(sub.id).get()).id == sub.id


async def test_revoking_grants_asks_for_reauthorization(connector, receiver, control):
    await events_subscription(connector, receiver)
    await control.revoke_consent(connector.tenant_id, connector.emulator.client_id)
    await receiver.wait_for(lambda: len(receiver.lifecycle) >= 1)
    assert receiver.lifecycle[0]["lifecycleEvent"] == "reauthorizationRequired"
