"""A stateful property test: random Outlook changes (calendar events and To Do tasks), notifications and
faults, in any order, always end with the host's view (the feed replayed) equal to the mailbox and the
list, nothing announced twice and nothing lost."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from shared.domain.tenants import AuthMode, Tenant, TenantSettings, TenantState
from shared.domain.users import MatchStatus, StaffMember, SyncState, UserRecord
from shared.service import jobs
from shared.service.errors import DeltaTokenRejected
from shared.service.job_handlers import run_job
from tests.fakes.calendar import throttled
from tests.fakes.events import event
from tests.fakes.outlook_tasks import task
from tests.fakes.services import fake_world

pytestmark = pytest.mark.unit

TID, DIRECTORY, USER, STAFF = "contoso.example", "9188040d-6c67-4c5b-b112-36a304b66dad", "g1", "s1"
IDS = st.sampled_from([f"E{i}" for i in range(8)])
TASK_IDS = st.sampled_from([f"T{i}" for i in range(6)])


class Convergence(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.world = fake_world()
        self.host: dict[str, str] = {}  # the host's view: event id -> subject, from the feed
        self.host_tasks: dict[str, str] = {}  # and task id -> title
        self.list_id = ""
        self.read = 0  # feed entries replayed so far
        self.version = 0

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    @initialize()
    def connect(self) -> None:
        now = self.world.clock.now()
        tenant = Tenant(
            TID,
            DIRECTORY,
            "Contoso",
            AuthMode.ADMIN_CONSENT,
            TenantState.MIGRATING,
            TenantSettings(),
            now,
            now,
        )
        self.run(self.world.tenants.add(tenant))
        staff = StaffMember(STAFF, "adele@contoso.example", None, "Adele")
        staff = replace(staff, switches=staff.switches.changed({"tasks_from_outlook": True}))
        self.run(self.world.users.save(UserRecord(TID, staff, MatchStatus.MATCHED, now, graph_user_id=USER)))
        self.run(self.world.jobs.enqueue([jobs.migrate_user(TID, STAFF)]))
        self.drain()
        user = self.run(self.world.users.get(TID, STAFF))
        assert user.task_sync.list_id, user.task_sync
        self.list_id = user.task_sync.list_id

    # --- Outlook -------------------------------------------------------------------------------------

    @rule(event_id=IDS)
    def put_event(self, event_id: str) -> None:
        self.version += 1
        self.world.mailboxes.put(USER, replace(event(event_id), subject=f"{event_id} v{self.version}"))

    @rule(event_id=IDS)
    def delete_event(self, event_id: str) -> None:
        self.world.mailboxes.remove(USER, event_id)

    @rule()
    def expire_delta_tokens(self) -> None:
        self.world.mailboxes.expire_tokens(USER)

    # --- To Do ---------------------------------------------------------------------------------------

    @rule(task_id=TASK_IDS)
    def put_task(self, task_id: str) -> None:
        self.version += 1
        self.world.task_lists.put(USER, self.list_id, task(task_id, title=f"{task_id} v{self.version}"))

    @rule(task_id=TASK_IDS, moved=st.booleans())
    def remove_task(self, task_id: str, moved: bool) -> None:
        if task_id in self.world.task_lists.task_list(USER, self.list_id).tasks:
            self.world.task_lists.remove(USER, self.list_id, task_id, moved=moved)

    @rule()
    def expire_task_tokens(self) -> None:
        self.world.task_lists.expire_tokens(USER, self.list_id)

    @rule(kind=st.sampled_from(["throttled", "token_rejected"]))
    def task_fault(self, kind: str) -> None:
        error = throttled(1) if kind == "throttled" else DeltaTokenRejected("stale")
        self.world.task_lists.task_list(USER, self.list_id).faults.append(error)

    @rule(copies=st.integers(1, 3))
    def notify_tasks(self, copies: int) -> None:
        self.run(self.world.jobs.enqueue([jobs.sync_tasks(TID, STAFF)] * copies))

    # --- faults and notifications -------------------------------------------------------------------

    @rule(kind=st.sampled_from(["throttled", "token_rejected"]))
    def fault(self, kind: str) -> None:
        error = throttled(1) if kind == "throttled" else DeltaTokenRejected("stale")
        self.world.mailboxes.mailbox(USER).faults.append(error)

    @rule(copies=st.integers(1, 3))
    def notify(self, copies: int) -> None:
        self.run(self.world.jobs.enqueue([jobs.sync_user(TID, STAFF)] * copies))

    @rule()
    def deliver_some(self) -> None:
        """Run the queued jobs once (retries land back on the queue)."""
        for job in [j for j in self.world.jobs.take() if j.queue == jobs.SYNC_QUEUE]:
            self.run(run_job(self.world.services, job))
        self.replay()

    # --- the host's view ----------------------------------------------------------------------------

    def replay(self) -> None:
        entries = self.world.feed.entries.get(TID, [])
        for change in entries[self.read :]:
            if change.type.startswith("task."):
                self.replay_task(change.type, change.data)
                continue
            if not change.type.startswith("event."):
                continue
            event_id = change.data["event"]["id"]
            if change.type == "event.created":
                assert event_id not in self.host, f"{event_id} announced twice"
                self.host[event_id] = change.data["event"]["subject"]
            elif change.type == "event.updated":
                assert event_id in self.host, f"{event_id} updated before it was created"
                self.host[event_id] = change.data["event"]["subject"]
            else:
                assert event_id in self.host, f"{event_id} deleted but never created"
                del self.host[event_id]
        self.read = len(entries)

    def replay_task(self, kind: str, data: dict[str, Any]) -> None:
        task_id = data["task"]["id"]
        if kind == "task.created":
            assert task_id not in self.host_tasks, f"{task_id} announced twice"
            self.host_tasks[task_id] = data["task"]["title"]
        elif kind == "task.updated":
            assert task_id in self.host_tasks, f"{task_id} updated before it was created"
            self.host_tasks[task_id] = data["task"]["title"]
        else:
            assert task_id in self.host_tasks, f"{task_id} deleted but never created"
            del self.host_tasks[task_id]

    def drain(self) -> None:
        for _ in range(100):
            pending = [j for j in self.world.jobs.take() if j.queue == jobs.SYNC_QUEUE]
            if not pending:
                self.replay()
                return
            for job in pending:
                self.run(run_job(self.world.services, job))
        raise AssertionError("jobs never settled")

    @invariant()
    def the_feed_stays_consistent(self) -> None:
        self.replay()  # asserts: nothing created twice, nothing updated or deleted before it was created

    def settle(self) -> None:
        """Whatever happened, one more notification and a quiet queue bring the host level with Outlook."""
        self.world.mailboxes.mailbox(USER).faults.clear()
        self.world.task_lists.task_list(USER, self.list_id).faults.clear()
        self.run(self.world.jobs.enqueue([jobs.sync_user(TID, STAFF), jobs.sync_tasks(TID, STAFF)]))
        self.drain()
        outlook = {e.id: e.subject for e in self.world.mailboxes.mailbox(USER).events.values()}
        assert self.host == outlook
        todo = {t.id: t.title for t in self.world.task_lists.task_list(USER, self.list_id).tasks.values()}
        assert self.host_tasks == todo
        user = self.run(self.world.users.get(TID, STAFF))
        assert user.sync_state is SyncState.SYNCED
        assert user.task_sync.state is SyncState.SYNCED

    def teardown(self) -> None:
        try:
            self.settle()
        finally:
            self.loop.close()


Convergence.TestCase.settings = settings(
    max_examples=60, stateful_step_count=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
test_sync_converges = Convergence.TestCase
