"""The write planner: which staff calendars get a create, an update, a delete or a link, and why."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from shared.domain.appointments import (
    Appointment,
    AppointmentRecord,
    CopyRole,
    CopyState,
    Customer,
    Invitee,
    Override,
    Recurrence,
    StaffCopy,
    StaffTarget,
    StepKind,
    appointment_of_transaction,
    complete_override,
    draft_for,
    plan_writes,
    ruled_occurrence,
)
from shared.domain.tenants import MultiStaffMode

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 22, tzinfo=UTC)
COPIES, MEETING = MultiStaffMode.COPIES, MultiStaffMode.MEETING


def appt(*staff: str) -> Appointment:
    return Appointment(
        "a-1", "Intake", T0, T0.replace(hour=1), "UTC", False, staff, customers=(Customer("C", "c@x.org"),)
    )


def targets(*staff: str, problem: dict[str, str] | None = None) -> dict[str, StaffTarget]:
    problem = problem or {}
    return {
        s: StaffTarget(
            s, None if s in problem else f"g-{s}", f"{s}@contoso.example", s.upper(), problem.get(s)
        )
        for s in staff
    }


def synced(staff: str, role: CopyRole = CopyRole.COPY, revision: int = 1) -> StaffCopy:
    return StaffCopy(
        staff, role, CopyState.SYNCED, f"g-{staff}", f"evt-{staff}", "ck", "uid", revision=revision
    )


def record(appointment: Appointment | None, revision: int, *copies: StaffCopy) -> AppointmentRecord:
    return AppointmentRecord("t", "a-1", revision, appointment, {c.staff_id: c for c in copies}, T0)


def kinds(plan: object) -> list[tuple[str, str]]:
    steps = [*plan.deletes, *plan.writes, *plan.links]  # type: ignore[attr-defined]
    return sorted((s.kind.value, s.copy.staff_id) for s in steps)


def test_a_new_appointment_creates_one_event_per_staff_calendar() -> None:
    plan = plan_writes(record(appt("s1", "s2"), 1), targets("s1", "s2"), COPIES)
    assert kinds(plan) == [("create", "s1"), ("create", "s2")]


def test_a_new_revision_updates_and_a_current_one_does_nothing() -> None:
    assert kinds(plan_writes(record(appt("s1"), 2, synced("s1")), targets("s1"), COPIES)) == [
        ("update", "s1")
    ]
    assert plan_writes(record(appt("s1"), 1, synced("s1")), targets("s1"), COPIES).empty


def test_staff_added_and_removed_touch_only_their_calendars() -> None:
    plan = plan_writes(
        record(appt("s1", "s3"), 2, synced("s1"), synced("s2")), targets("s1", "s2", "s3"), COPIES
    )
    assert kinds(plan) == [("create", "s3"), ("delete", "s2"), ("update", "s1")]


def test_a_deleted_appointment_deletes_every_copy() -> None:
    plan = plan_writes(record(None, 3, synced("s1"), synced("s2")), targets("s1", "s2"), COPIES)
    assert kinds(plan) == [("delete", "s1"), ("delete", "s2")]


def test_a_staff_member_without_a_mailbox_fails_alone() -> None:
    plan = plan_writes(record(appt("s1", "s2"), 1), targets("s1", "s2", problem={"s2": "no mailbox"}), COPIES)
    assert kinds(plan) == [("create", "s1"), ("fail", "s2")]
    assert [s.reason for s in plan.writes if s.kind is StepKind.FAIL] == ["no mailbox"]


def test_a_recheck_looks_at_a_copy_that_holds_the_revision() -> None:
    plan = plan_writes(record(appt("s1"), 1, synced("s1")), targets("s1"), COPIES, recheck=["s1"])
    assert kinds(plan) == [("update", "s1")]


def test_meeting_mode_writes_the_organiser_and_links_the_attendees() -> None:
    plan = plan_writes(record(appt("s1", "s2", "s3"), 1), targets("s1", "s2", "s3"), MEETING)
    assert kinds(plan) == [("create", "s1"), ("link", "s2"), ("link", "s3")]
    assert [s.copy.role for s in plan.links] == [CopyRole.ATTENDEE, CopyRole.ATTENDEE]


def test_switching_modes_makes_each_copy_anew_under_a_new_transaction_id() -> None:
    before = record(appt("s1", "s2"), 2, synced("s1"), synced("s2"))
    plan = plan_writes(before, targets("s1", "s2"), MEETING)
    assert kinds(plan) == [("create", "s1"), ("delete", "s1"), ("delete", "s2"), ("link", "s2")]
    created = next(s.copy for s in plan.writes if s.kind is StepKind.CREATE)
    assert created.transaction_id("a-1") != synced("s1").transaction_id("a-1")


def test_a_failed_organiser_fails_the_attendees_too() -> None:
    plan = plan_writes(record(appt("s1", "s2"), 1), targets("s1", "s2", problem={"s1": "unmatched"}), MEETING)
    assert kinds(plan) == [("fail", "s1"), ("fail", "s2")]


def test_a_copy_carries_the_customers_in_its_body_and_a_meeting_invites_them() -> None:
    appointment = appt("s1", "s2")
    copy = draft_for(appointment, CopyRole.COPY)
    assert copy.attendees == () and "C <c@x.org>" in copy.body
    meeting = draft_for(appointment, CopyRole.ORGANIZER, [Invitee("S2", "s2@contoso.example")])
    assert [a.address for a in meeting.attendees] == ["s2@contoso.example", "c@x.org"]
    assert "c@x.org" not in meeting.body


def test_the_connectors_transaction_ids_name_their_appointment() -> None:
    copy = StaffCopy("s1", CopyRole.COPY, generation=2)
    assert appointment_of_transaction(copy.transaction_id("a-1")) == "a-1"
    assert appointment_of_transaction("someone-elses-id") is None
    assert appointment_of_transaction(None) is None


def test_an_occurrence_put_back_is_the_rules_time_and_the_series_texts() -> None:
    zone = ZoneInfo("Europe/Amsterdam")
    start = datetime(2026, 10, 20, 9, tzinfo=zone)  # summer time; the day put back is in winter time
    series = replace(appt("s1"), start=start, end=start + timedelta(minutes=90), time_zone="Europe/Amsterdam")
    draft = draft_for(replace(series, recurrence=Recurrence("FREQ=DAILY")), CopyRole.COPY)
    ruled = ruled_occurrence(draft, date(2026, 11, 2))
    assert (ruled.start, ruled.end) == (
        datetime(2026, 11, 2, 9, tzinfo=zone),
        datetime(2026, 11, 2, 10, 30, tzinfo=zone),
    )
    assert (ruled.subject, ruled.location, ruled.body) == (draft.subject, draft.location, draft.body)
    all_day = draft_for(
        replace(series, start=date(2026, 10, 20), end=date(2026, 10, 21), all_day=True), CopyRole.COPY
    )
    assert (
        ruled_occurrence(all_day, date(2026, 11, 2)).start,
        ruled_occurrence(all_day, date(2026, 11, 2)).end,
    ) == (
        date(2026, 11, 2),
        date(2026, 11, 3),
    )


def test_an_override_rewritten_states_every_text_the_host_left_to_the_series() -> None:
    draft = draft_for(replace(appt("s1"), location="Room 2"), CopyRole.COPY)
    moved = Override(date(2026, 11, 24), T0, T0.replace(hour=2), subject="moved")
    whole = complete_override(draft, moved)
    assert (whole.subject, whole.location, whole.body) == ("moved", "Room 2", draft.body)
    assert complete_override(draft, replace(moved, location="")).location == ""  # blank is the host's own
