"""Every job kind through its queue message (shared/service/job_codec.py), and what a message that
carries no job comes to (shared/service/job_handlers.py): logged and dropped, never raised."""

from __future__ import annotations

import dataclasses
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.service import jobs
from shared.service.job_codec import KINDS, MalformedJob, UnknownJobKind, decode, encode
from shared.service.job_handlers import HANDLERS, run_message
from shared.service.jobs import JOB_TYPES, Job, SyncMode, TaskMode, TenantWork
from tests.fakes.services import FakeWorld, fake_world

pytestmark = pytest.mark.unit

TID = "contoso.example"
texts = st.text(max_size=40)
counts = st.integers(min_value=0, max_value=2**53)
ids = st.lists(texts, max_size=5).map(tuple)


@st.composite
def _deliveries(draw: st.DrawFn) -> jobs.Deliver:
    first = draw(st.integers(min_value=1, max_value=2**53))
    last = draw(st.integers(min_value=first, max_value=2**53))
    return jobs.Deliver(draw(texts), first, last, draw(counts))


STRATEGIES: dict[type[Job], st.SearchStrategy[Job]] = {
    jobs.TenantJob: st.builds(jobs.TenantJob, tenant_id=texts, kind=st.sampled_from(TenantWork)),
    jobs.SyncUser: st.builds(
        jobs.SyncUser,
        tenant_id=texts,
        staff_id=texts,
        kind=st.sampled_from(SyncMode),
        reason=texts,
        force=st.booleans(),
        attempt=counts,
        check_back=counts,
    ),
    jobs.SyncTasks: st.builds(
        jobs.SyncTasks,
        tenant_id=texts,
        staff_id=texts,
        kind=st.sampled_from(TaskMode),
        reason=texts,
        attempt=counts,
        check_back=counts,
    ),
    jobs.WriteTask: st.builds(
        jobs.WriteTask,
        tenant_id=texts,
        task_id=texts,
        revision=st.none() | counts,
        attempt=counts,
        check_back=counts,
    ),
    jobs.CatchUpTasks: st.builds(jobs.CatchUpTasks, tenant_id=texts, staff_id=st.none() | texts),
    jobs.Notified: st.builds(jobs.Notified, directory_id=texts, subscription_id=texts, graph_user_id=texts),
    jobs.RemoveStaff: st.builds(
        jobs.RemoveStaff, tenant_id=texts, staff_id=texts, subscription_id=texts, check_back=counts
    ),
    jobs.WriteAppointment: st.builds(
        jobs.WriteAppointment,
        tenant_id=texts,
        appointment_id=texts,
        reason=texts,
        revision=st.none() | counts,
        recheck=ids,
        events=ids,
        attempt=counts,
        check_back=counts,
    ),
    jobs.CatchUpWrites: st.builds(jobs.CatchUpWrites, tenant_id=texts, staff_id=texts),
    jobs.Deliver: _deliveries(),
    jobs.SendMail: st.builds(
        jobs.SendMail, tenant_id=texts, message_id=texts, attempt=counts, check_back=counts
    ),
}


def test_every_kind_has_a_record_on_its_queue_and_a_handler() -> None:
    assert set(STRATEGIES) == set(JOB_TYPES) == set(KINDS.values())
    assert sorted(kind for _, kind in KINDS) == sorted(HANDLERS)
    assert {queue for queue, _ in KINDS} == set(jobs.QUEUES)


@pytest.mark.parametrize(("queue", "kind"), sorted(KINDS), ids="/".join)
@given(data=st.data())
def test_every_job_kind_round_trips_through_its_message(queue: str, kind: str, data: st.DataObject) -> None:
    job = data.draw(STRATEGIES[KINDS[queue, kind]].filter(lambda j: j.kind == kind))
    message = encode(job)
    assert decode(job.queue, message) == job
    assert decode(job.queue, message.encode()) == job  # the trigger's body is bytes


def test_the_delay_is_the_queues_not_the_messages() -> None:
    job = jobs.deliver(TID, 1, 2, attempt=1, delay_seconds=30)
    assert decode(job.queue, encode(job)) == dataclasses.replace(job, delay_seconds=0)


@pytest.mark.parametrize(
    ("queue", "message", "job"),
    [
        ("tenant-jobs", '{"kind":"discover","tenant_id":"t"}', jobs.discover("t")),
        ("tenant-jobs", '{"kind":"renew_subscriptions","tenant_id":"t"}', jobs.renew_tenant("t")),
        (
            "sync-jobs",
            '{"kind":"migrate","tenant_id":"t","staff_id":"s"}',
            jobs.SyncUser("t", "s", SyncMode.MIGRATE),
        ),
        (
            "sync-jobs",
            '{"kind":"resync","tenant_id":"t","staff_id":"s","reason":"requested","force":true,"attempt":2}',
            jobs.SyncUser("t", "s", SyncMode.RESYNC, "requested", force=True, attempt=2),
        ),
        (
            "sync-jobs",
            '{"kind":"notified","tenant_id":"dir","subscription_id":"sub","graph_user_id":"g"}',
            jobs.notified("dir", "sub", "g"),
        ),
        (
            "outlook-writes",
            '{"kind":"write","tenant_id":"t","appointment_id":"a","reason":"changed_in_outlook",'
            '"recheck":["s1"],"events":["e1","e2"],"check_back":1}',
            jobs.WriteAppointment("t", "a", "changed_in_outlook", None, ("s1",), ("e1", "e2"), check_back=1),
        ),
        (
            "host-deliveries",
            '{"kind":"deliver","tenant_id":"t","first":4,"last":6,"attempt":0}',
            jobs.deliver("t", 4, 6),
        ),
    ],
)
def test_a_message_queued_before_the_records_decodes(queue: str, message: str, job: Job) -> None:
    assert decode(queue, message) == job


@pytest.mark.parametrize(
    ("queue", "message"),
    [
        ("tenant-jobs", '{"kind":"reindex","tenant_id":"t"}'),  # a newer version's kind
        ("sync-jobs", '{"kind":"write","tenant_id":"t","appointment_id":"a"}'),  # another queue's
        ("outlook-writes", '{"kind":"sync","tenant_id":"t","staff_id":"s"}'),
    ],
)
def test_an_unknown_kind_is_refused(queue: str, message: str) -> None:
    with pytest.raises(UnknownJobKind):
        decode(queue, message)


MALFORMED = [
    b"\xff\xfe",
    "not json",
    "[]",
    '{"tenant_id":"t"}',
    '{"kind":7,"tenant_id":"t"}',
    '{"kind":"discover"}',
    '{"kind":"discover","tenant_id":null}',
    '{"kind":"sync","tenant_id":"t"}',
    '{"kind":"sync","tenant_id":"t","staff_id":"s","force":"yes"}',
    '{"kind":"write","tenant_id":"t","appointment_id":"a","recheck":"s1"}',
    '{"kind":"deliver","tenant_id":"t","first":"1","last":2}',
    '{"kind":"deliver","tenant_id":"t","first":3,"last":2}',
]


@pytest.mark.parametrize("message", MALFORMED)
def test_a_malformed_message_is_refused(message: str | bytes) -> None:
    for queue in jobs.QUEUES:
        with pytest.raises(MalformedJob):
            decode(queue, message)


@pytest.mark.parametrize("message", [*MALFORMED, '{"kind":"reindex","tenant_id":"contoso.example"}'])
async def test_a_message_that_carries_no_job_is_logged_and_dropped(
    message: str | bytes, caplog: pytest.LogCaptureFixture
) -> None:
    world: FakeWorld = fake_world()
    with caplog.at_level(logging.ERROR, logger="connector"):
        await run_message(world.services, jobs.TENANT_QUEUE, message, function="tenant_job")
    assert world.jobs.queued == []
    assert [r.getMessage() for r in caplog.records if "carries no job" in r.getMessage()]
