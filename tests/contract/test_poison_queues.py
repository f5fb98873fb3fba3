"""The poison queues' store: the fake and the Storage adapter on Azurite behave alike (put, peek without
hiding, take one message by id and leave the others visible at once)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from shared.adapters.poison_queues import StoragePoisonQueues
from shared.service.ports.poison import PoisonQueues
from tests.fakes.poison import FakePoisonQueues
from tests.fixtures.azurite import fresh_storage

pytestmark = pytest.mark.contract


@pytest.fixture(params=["fake", "azurite"])
async def poison(request: pytest.FixtureRequest) -> AsyncIterator[PoisonQueues]:
    if request.param == "fake":
        yield FakePoisonQueues()
        return
    async with fresh_storage(request.getfixturevalue("azurite"), "poison") as storage:
        yield StoragePoisonQueues(storage)


@pytest.fixture
def queue() -> str:
    return f"jobs{uuid.uuid4().hex[:12]}"  # its own `<queue>-poison` on the shared Azurite


async def test_take_removes_one_message_and_leaves_the_others_visible(
    poison: PoisonQueues, queue: str
) -> None:
    for body in ('{"kind":"a"}', '{"kind":"b"}', '{"kind":"c"}'):
        await poison.put(queue, body)
    peeked = await poison.peek(queue)
    assert [m.body for m in peeked] == ['{"kind":"a"}', '{"kind":"b"}', '{"kind":"c"}']
    assert await poison.peek(queue) == peeked  # a peek hides nothing
    taken = await poison.take(queue, peeked[1].message_id)
    assert taken is not None and taken.body == '{"kind":"b"}' and taken.queue == queue
    assert [m.body for m in await poison.peek(queue)] == ['{"kind":"a"}', '{"kind":"c"}']  # back at once
    assert await poison.take(queue, peeked[1].message_id) is None


async def test_count_tells_how_many_a_queue_holds_beyond_what_a_peek_shows(
    poison: PoisonQueues, queue: str
) -> None:
    assert await poison.count(queue) == 0
    for number in range(34):
        await poison.put(queue, f'{{"kind":"k{number}"}}')
    assert len(await poison.peek(queue)) == 32  # Storage's most per peek
    assert await poison.count(queue) == 34
