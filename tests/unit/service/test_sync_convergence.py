"""A stateful property test: random Outlook changes (single events, a weekly series whose occurrences are
cancelled, moved, retitled, or which is deleted and made again, and To Do tasks), notifications and
faults, in any order, always end with the host's view (the feed replayed) equal to the mailbox and the
list, nothing announced twice and nothing lost: with `recurring_events: series`, the series' occurrences
the host computes from the carried RRULE (dateutil), less its exdates, with its exceptions in place, are
the mailbox's."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from shared.domain.calendar import EventKind
from shared.domain.tenants import AuthMode, Tenant, TenantSettings, TenantState
from shared.domain.users import MatchStatus, StaffMember, SyncState, UserRecord
from shared.service import jobs
from shared.service.errors import DeltaTokenRejected
from shared.service.job_handlers import run_job
from tests.fakes.calendar import throttled
from tests.fakes.events import event
from tests.fakes.outlook_tasks import task
from tests.fakes.series import OutlookSeries
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
        self.host: dict[str, dict[str, Any]] = {}  # the host's view: event id -> event, from the feed
        self.host_tasks: dict[str, str] = {}  # and task id -> title
        self.list_id = ""
        self.read = 0  # feed entries replayed so far
        self.version = 0
        self.series: OutlookSeries | None = None
        self.made = 0  # series made so far (each with a master id of its own)

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

    @rule(action=st.sampled_from(["cancel", "move", "retitle", "delete", "make"]), week=st.integers(0, 5))
    def change_series(self, action: str, week: int) -> None:
        series = self.series
        if series is None or action == "make":
            if series is not None:
                series.delete()
            self.made += 1
            self.series = OutlookSeries(self.world.mailboxes, weeks=6, user=USER, master_id=f"S{self.made}")
            return
        day = (series.master.start + timedelta(weeks=week)).date()  # type: ignore[operator]
        if action == "delete":
            series.delete()
            self.series = None
        elif action == "cancel":
            series.cancel(day)
        elif action == "move" and day not in series.cancelled:
            series.move(day, hours=week + 1)
        elif action == "retitle":
            self.version += 1
            series.change_master(subject=f"Weekly review v{self.version}")

    @rule()
    def expire_delta_tokens(self) -> None:
        self.world.mailboxes.expire_tokens(USER)

    # --- To Do ---------------------------------------------------------------------------------------

    @rule(task_id=TASK_IDS)
    def put_task(self, task_id: str) -> None:
        self.version += 1
        self.world.todo.put(USER, self.list_id, task(task_id, title=f"{task_id} v{self.version}"))

    @rule(task_id=TASK_IDS, moved=st.booleans())
    def remove_task(self, task_id: str, moved: bool) -> None:
        if task_id in self.world.todo.task_list(USER, self.list_id).tasks:
            self.world.todo.remove(USER, self.list_id, task_id, moved=moved)

    @rule()
    def expire_task_tokens(self) -> None:
        self.world.todo.expire_tokens(USER, self.list_id)

    @rule(kind=st.sampled_from(["throttled", "token_rejected"]))
    def task_fault(self, kind: str) -> None:
        error = throttled(1) if kind == "throttled" else DeltaTokenRejected("stale")
        self.world.todo.task_list(USER, self.list_id).faults.append(error)

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
            assert change.data["event"].get("type") != "occurrence", "an occurrence of a series announced"
            if change.type == "event.created":
                assert event_id not in self.host, f"{event_id} announced twice"
                self.host[event_id] = change.data["event"]
            elif change.type == "event.updated":
                assert event_id in self.host, f"{event_id} updated before it was created"
                self.host[event_id] = change.data["event"]
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
        self.world.todo.task_list(USER, self.list_id).faults.clear()
        self.run(self.world.jobs.enqueue([jobs.sync_user(TID, STAFF), jobs.sync_tasks(TID, STAFF)]))
        self.drain()
        box = self.world.mailboxes.mailbox(USER)
        outlook = {e.id: e.subject for e in box.events.values() if e.kind is not EventKind.OCCURRENCE}
        outlook |= {m.id: m.subject for m in box.masters.values()}
        assert {i: e["subject"] for i, e in self.host.items()} == outlook
        if self.series is not None:
            assert self.reconstructed(self.series.master_id) == sorted(
                e.start for e in box.events.values() if e.series_master_id == self.series.master_id
            )
        todo = {t.id: t.draft.title for t in self.world.todo.task_list(USER, self.list_id).tasks.values()}
        assert self.host_tasks == todo
        user = self.run(self.world.users.get(TID, STAFF))
        assert user.sync_state is SyncState.SYNCED
        assert user.task_sync.state is SyncState.SYNCED

    def reconstructed(self, master_id: str) -> list[datetime]:
        """The series' instances as the host computes them from the feed (all in the fake's window)."""
        recurrence = self.host[master_id]["recurrence"]
        zone = ZoneInfo(recurrence["time_zone"])
        first = datetime.fromisoformat(recurrence["start"]).astimezone(zone).replace(tzinfo=None)
        exdates = set(recurrence["exdates"])
        moved = {
            e["original_start"]: e["start"]
            for e in self.host.values()
            if e.get("series_master_id") == master_id
        }
        assert self.series is not None
        found = []
        for wall in rrulestr(recurrence["rrule"], dtstart=first)[: self.series.weeks]:
            if wall.date().isoformat() in exdates:
                continue
            text = wall.replace(tzinfo=zone).astimezone(UTC).isoformat().replace("+00:00", "Z")
            found.append(datetime.fromisoformat(moved.pop(text, text).replace("Z", "+00:00")))
        assert not moved, f"exceptions of no occurrence: {moved}"
        return sorted(found)

    def teardown(self) -> None:
        try:
            self.settle()
        finally:
            self.loop.close()


Convergence.TestCase.settings = settings(
    max_examples=60, stateful_step_count=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
test_sync_converges = Convergence.TestCase
