"""The message monitor's store: each behaviour written once, run against the in-memory fake and the table
adapter on Azurite (listing newest first across days, filters, cursors, one message, pruning by age, a
tenant's purge), and the size of a typical row as stored."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from shared.adapters.tables.messages import TableMessages, message_to_entity
from shared.service import monitor
from shared.service.monitor import Direction, MessageQuery, MessageStatus, MonitoredMessage
from shared.service.ports.monitor import MessageLog
from tests.fakes.monitor import FakeMessages
from tests.fixtures.azurite import fresh_storage

pytestmark = pytest.mark.contract

T0 = datetime(2026, 11, 22, 23, 59, 0, tzinfo=UTC)  # a minute before midnight: the days' boundary is read
TID, OTHER = "contoso.example", "Fabrikam/Ünï"


@pytest.fixture(params=["fake", "azurite"])
async def log(request: pytest.FixtureRequest) -> AsyncIterator[MessageLog]:
    if request.param == "fake":
        yield FakeMessages()
        return
    async with fresh_storage(request.getfixturevalue("azurite"), "msgs") as storage:
        yield TableMessages(storage)


def push(
    at: datetime, staff: str = "s1", status: MessageStatus = MessageStatus.OK, tid: str = TID
) -> MonitoredMessage:
    return monitor.message(
        tid,
        Direction.PUSH,
        "appointment",
        status,
        "a-1",
        started_at=at - timedelta(seconds=1),
        at=at,
        staff_id=staff,
        event_id="AAMkAGI2TG93AAA=",
        revision=3,
    )


def pull(at: datetime, staff: str = "s2") -> MonitoredMessage:
    return monitor.message(
        TID,
        Direction.PULL,
        "notification",
        MessageStatus.OK,
        "sub-1",
        started_at=at,
        at=at,
        staff_id=staff,
        found=2,
        sequences=[7, 8],
    )


def query(**given: object) -> MessageQuery:
    base: dict[str, object] = {"since": T0 - timedelta(days=3), "until": T0 + timedelta(days=3)}
    return MessageQuery(**{**base, **given})  # type: ignore[arg-type]


async def test_a_tenants_messages_read_newest_first_across_days(log: MessageLog) -> None:
    recorded = [push(T0 + timedelta(minutes=m)) for m in range(4)] + [
        pull(T0 + timedelta(minutes=1, seconds=30))
    ]
    await log.record(recorded)
    await log.record([push(T0, tid=OTHER)])
    listed = (await log.list(TID, query())).messages
    assert [m.at for m in listed] == sorted((m.at for m in recorded), reverse=True)
    assert listed[0] == max(recorded, key=lambda m: m.at)  # every member as recorded
    assert {m.tenant_id for m in listed} == {TID}
    assert [m.tenant_id for m in (await log.list(OTHER, query())).messages] == [OTHER]


async def test_filters_since_and_the_cursor_are_ranges_of_the_listing(log: MessageLog) -> None:
    await log.record(
        [
            push(T0 + timedelta(minutes=m), status=MessageStatus.FAILED if m % 2 else MessageStatus.OK)
            for m in range(6)
        ]
    )
    await log.record([pull(T0 + timedelta(minutes=m)) for m in range(3)])
    only = await log.list(TID, query(staff_id="s1", direction=Direction.PUSH, status=MessageStatus.FAILED))
    assert [m.at.minute for m in only.messages] == [4, 2, 0]  # 23:59 + 5 minutes is 00:04 the next day
    since = await log.list(TID, query(since=T0 + timedelta(minutes=3), direction=Direction.PUSH))
    assert len(since.messages) == 3
    first = await log.list(TID, query(limit=4))
    assert first.next_cursor == first.messages[-1].message_id
    rest = await log.list(TID, query(limit=100, cursor=first.next_cursor))
    everything = await log.list(TID, query(limit=100))
    assert [m.message_id for m in first.messages + rest.messages] == [
        m.message_id for m in everything.messages
    ]
    assert rest.next_cursor is None


async def test_one_message_by_its_id(log: MessageLog) -> None:
    message = pull(T0)
    await log.record([message])
    assert await log.get(TID, message.message_id) == message
    assert await log.get(OTHER, message.message_id) is None


async def test_pruning_deletes_what_is_older_than_the_cutoff_and_a_purge_the_tenant(log: MessageLog) -> None:
    old = [push(T0 - timedelta(days=d)) for d in (20, 15, 2)]
    await log.record([*old, push(T0, tid=OTHER)])
    assert await log.prune(TID, T0 - timedelta(days=14)) == 2
    assert [m.at for m in (await log.list(TID, query(since=T0 - timedelta(days=30)))).messages] == [old[2].at]
    await log.record([pull(T0, staff="s9")])
    await log.delete_staff(TID, "s9")
    assert {m.staff_id for m in (await log.list(TID, query(since=T0 - timedelta(days=30)))).messages} == {
        "s1"
    }
    await log.delete_tenant(TID)
    assert (await log.list(TID, query(since=T0 - timedelta(days=30)))).messages == []
    assert len((await log.list(OTHER, query())).messages) == 1


def test_a_typical_message_row_is_small() -> None:
    """What a push row holds as stored (property names, values, keys); the benchmark prints the figure."""
    entity = message_to_entity(push(T0))
    size = sum(len(str(k)) + len(str(v)) for k, v in entity.items())
    assert size < 400, entity
