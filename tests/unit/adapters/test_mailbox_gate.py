"""The mailbox gate across workers: two gates (two workers, as two Functions instances) sharing one set
of claims never run more than four requests on a mailbox together, a worker meeting another's claim
waits its turn or defers its job, and a burst of requests costs one claim and one release."""

from __future__ import annotations

import asyncio

import pytest

from shared.adapters.graph.errors import Throttled
from shared.adapters.graph.mailbox_gate import MailboxGate, batch_mailbox
from tests.fakes.mailbox_claims import FakeMailboxClaims

ANNA = "/users/5b1e0c8e-9d43-4f0e-a7d1-0d6f2f3f1a01/calendarView/delta"
ANNA_EVENT = "/users/5B1E0C8E-9d43-4f0e-a7d1-0d6f2f3f1a01/events/AAMk"
BEN = "/users/ben%40contoso.example/events"


class Mailboxes:
    """Counts the requests running on each mailbox, all workers together."""

    def __init__(self) -> None:
        self.running: dict[str, int] = {}
        self.peak: dict[str, int] = {}

    async def request(self, gate: MailboxGate, path: str, seconds: float = 0.02) -> None:
        mailbox = path.split("/")[2].casefold()
        async with gate.hold(path):
            self.running[mailbox] = self.running.get(mailbox, 0) + 1
            self.peak[mailbox] = max(self.peak.get(mailbox, 0), self.running[mailbox])
            await asyncio.sleep(seconds)
            self.running[mailbox] -= 1


def workers(claims: FakeMailboxClaims, **options: float) -> tuple[MailboxGate, MailboxGate]:
    return (
        MailboxGate(claims=claims, worker="sync-instance", **options),
        MailboxGate(claims=claims, worker="writes-instance", **options),
    )


async def test_two_workers_together_never_pass_four_requests_on_a_mailbox() -> None:
    claims = FakeMailboxClaims()
    sync, writes = workers(claims, linger=0.05)
    seen = Mailboxes()
    await asyncio.gather(
        *(seen.request(sync, ANNA) for _ in range(12)),
        *(seen.request(writes, ANNA_EVENT) for _ in range(12)),
        *(seen.request(writes, BEN) for _ in range(6)),
    )
    assert seen.peak["5b1e0c8e-9d43-4f0e-a7d1-0d6f2f3f1a01"] == 4
    assert seen.peak["ben%40contoso.example"] == 4
    await sync.close()
    await writes.close()
    assert claims.rows == {}


async def test_without_claims_each_worker_keeps_only_its_own_four() -> None:
    """What one worker's gate alone allows: two workers reach eight on one mailbox."""
    sync, writes = MailboxGate(), MailboxGate()
    seen = Mailboxes()
    await asyncio.gather(
        *(seen.request(sync, ANNA) for _ in range(6)), *(seen.request(writes, ANNA_EVENT) for _ in range(6))
    )
    assert seen.peak["5b1e0c8e-9d43-4f0e-a7d1-0d6f2f3f1a01"] == 8


async def test_a_burst_of_requests_costs_one_claim_and_one_release() -> None:
    claims = FakeMailboxClaims()
    sync, _ = workers(claims, linger=0.2)
    seen = Mailboxes()
    for _ in range(5):  # one after the other, as a sync run's pages
        await seen.request(sync, ANNA, 0.01)
    assert claims.writes == 1
    await asyncio.sleep(0.4)
    assert claims.writes == 2
    assert claims.rows == {}


async def test_a_worker_meeting_another_claim_defers_its_job_with_the_time_left() -> None:
    claims = FakeMailboxClaims()
    sync, writes = workers(claims, max_wait=0.3, ttl=30)
    seen = Mailboxes()
    long_run = asyncio.create_task(seen.request(sync, ANNA, 1.0))
    await asyncio.sleep(0.05)
    with pytest.raises(Throttled) as deferred:
        await seen.request(writes, ANNA_EVENT)
    assert deferred.value.code == "MailboxBusy"
    assert 25 < deferred.value.retry_after <= 30
    assert seen.peak == {"5b1e0c8e-9d43-4f0e-a7d1-0d6f2f3f1a01": 1}
    await long_run
    await sync.close()
    await seen.request(writes, ANNA_EVENT)  # free again
    await writes.close()


async def test_a_claim_a_dead_worker_left_lapses() -> None:
    claims = FakeMailboxClaims()
    await claims.claim("5b1e0c8e-9d43-4f0e-a7d1-0d6f2f3f1a01", "killed-instance", 0.3)
    _, writes = workers(claims, max_wait=5)
    seen = Mailboxes()
    await seen.request(writes, ANNA_EVENT)
    assert claims.rows["5b1e0c8e-9d43-4f0e-a7d1-0d6f2f3f1a01"][0] == "writes-instance"
    await writes.close()


async def test_a_batch_on_one_mailbox_holds_as_many_slots_as_graph_runs_at_once() -> None:
    one = {"requests": [{"id": str(n), "method": "GET", "url": f"{ANNA_EVENT}{n}"} for n in range(20)]}
    several = {"requests": [{"id": "1", "url": ANNA}, {"id": "2", "url": BEN}]}
    assert batch_mailbox(one) == ("5b1e0c8e-9d43-4f0e-a7d1-0d6f2f3f1a01", 4)
    assert batch_mailbox(several) == (None, 0)
    gate = MailboxGate()
    seen = Mailboxes()
    order: list[str] = []

    async def batch() -> None:
        async with gate.hold("/$batch", one):
            order.append("batch")
            await asyncio.sleep(0.05)

    async def single() -> None:
        await asyncio.sleep(0.01)
        await seen.request(gate, ANNA, 0.01)
        order.append("single")

    await asyncio.gather(batch(), single())
    assert order == ["batch", "single"]  # the single request waited for the batch's four


async def test_a_run_pausing_between_its_requests_keeps_one_claim() -> None:
    """A run's storage work between its Graph requests (a second on a loaded worker) does not let the
    mailbox go and claim it again: one insert for the run, one delete after it."""
    claims = FakeMailboxClaims()
    gate = MailboxGate(claims=claims)
    seen = Mailboxes()
    for _ in range(3):
        await seen.request(gate, ANNA, 0.01)
        await asyncio.sleep(0.8)
    assert claims.writes == 1
    await gate.close()
    assert claims.writes == 2 and claims.rows == {}


async def test_a_job_that_ended_lets_its_mailboxes_go_at_once_for_the_next_worker() -> None:
    """The sync a write's notification brings runs on another worker: it must not wait out the write
    worker's linger (2 s) and its own looks. A job's end lets go of the claims no request holds."""
    claims = FakeMailboxClaims()
    writes, sync = workers(claims, linger=5.0)
    seen = Mailboxes()
    async with writes.job():
        await seen.request(writes, ANNA_EVENT, 0.01)
        await seen.request(writes, BEN, 0.01)
    assert claims.rows == {}
    started = asyncio.get_running_loop().time()
    await seen.request(sync, ANNA, 0.01)
    assert asyncio.get_running_loop().time() - started < 0.1  # no look at another worker's claim
    await sync.close()


async def test_a_job_ending_keeps_the_claim_another_running_job_of_the_worker_holds() -> None:
    claims = FakeMailboxClaims()
    gate = MailboxGate(claims=claims, linger=5.0)
    seen = Mailboxes()

    async def other_job() -> None:
        async with gate.job():
            await seen.request(gate, ANNA, 0.3)

    other = asyncio.create_task(other_job())
    await asyncio.sleep(0.05)
    async with gate.job():
        await seen.request(gate, ANNA_EVENT, 0.01)
    assert list(claims.rows) == ["5b1e0c8e-9d43-4f0e-a7d1-0d6f2f3f1a01"]  # still held for the other job
    await other
    assert claims.rows == {}
    await gate.close()
