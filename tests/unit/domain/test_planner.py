"""The sync planner: Outlook's report against the stored status becomes the right changes, once."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from shared.domain.calendar import BODY_LIMIT, OutlookEvent, RemovedEvent
from shared.domain.planner import (
    MASS_DELETE_MIN,
    ChangeType,
    HostLinks,
    ItemStatus,
    Observation,
    Plan,
    Visibility,
    plan,
)
from shared.domain.tenants import ImportFilter, ImportFilterMode
from tests.fakes.events import event

pytestmark = pytest.mark.unit

WINDOW_START = datetime(2026, 10, 23, tzinfo=UTC)
ALL = Visibility()


def delta(
    *items: OutlookEvent | RemovedEvent, complete: bool = False, migrating: bool = False
) -> Observation:
    return Observation(list(items), complete, WINDOW_START, migrating=migrating)


def stored_after(result: Plan, before: dict[str, ItemStatus] | None = None) -> dict[str, ItemStatus]:
    state = dict(before or {})
    for graph_id in result.deletes:
        state.pop(graph_id, None)
    for status in result.upserts:
        state[status.graph_id] = status
    return state


def kinds(result: Plan) -> list[str]:
    return [c.type.value for c in result.changes]


def test_a_new_event_is_created_for_the_host_and_stored() -> None:
    e = event("A")
    result = plan(delta(e), {}, ALL)
    assert kinds(result) == ["event.created"]
    assert result.changes[0].data["event"]["subject"] == e.subject
    assert stored_after(result)["A"].content_hash == e.content_hash()


def test_a_body_beyond_the_limit_reaches_the_host_cut_and_flagged_and_its_edits_still_count() -> None:
    huge = event("A", body="\u00e9" * (BODY_LIMIT + 5), body_type="html")
    small = event("B", body="Bring the plans")

    result = plan(delta(huge, small), {}, ALL)

    bodies = {c.data["event"]["id"]: c.data["event"]["body"] for c in result.changes}
    assert bodies["A"] == {"content_type": "html", "content": "\u00e9" * BODY_LIMIT, "truncated": True}
    assert bodies["B"] == {"content_type": "text", "content": "Bring the plans", "truncated": False}
    edited = replace(huge, body=huge.body + "!")  # an edit past the cut is still an update
    assert kinds(plan(delta(edited), stored_after(result), ALL)) == ["event.updated"]


def test_a_replayed_report_changes_nothing() -> None:
    e = event("A")
    first = plan(delta(e), {}, ALL)
    again = plan(delta(e), stored_after(first), ALL)
    assert again.empty


def test_a_new_change_key_with_the_same_content_only_refreshes_the_status() -> None:
    e = event("A")
    stored = stored_after(plan(delta(e), {}, ALL))
    touched = replace(e, change_key="ck-new")
    result = plan(delta(touched), stored, ALL)
    assert result.changes == []
    assert stored_after(result, stored)["A"].change_key == "ck-new"


def test_a_status_hashed_before_the_response_joined_the_hash_announces_nothing_new() -> None:
    """A received meeting stored by the release before the staff member's response joined the content hash
    (the hash of the first members only) is not announced again once that release's successor reads it;
    its status takes the hash of today's format, and a later real edit is still an update."""
    received = event("A", is_organizer=False, response="accepted")
    earlier = stored_after(plan(delta(received), {}, ALL))["A"]
    earlier_hash = received.first_format_hash()
    stored = {"A": replace(earlier, content_hash=earlier_hash)}
    assert earlier_hash != received.content_hash()

    result = plan(delta(replace(received, change_key="ck-next")), stored, ALL)

    assert result.changes == []
    assert stored_after(result, stored)["A"].content_hash == received.content_hash()
    moved = replace(received, subject="Moved", change_key="ck-later")
    assert kinds(plan(delta(moved), stored, ALL)) == ["event.updated"]


def test_an_edit_is_an_update() -> None:
    e = event("A")
    stored = stored_after(plan(delta(e), {}, ALL))
    result = plan(delta(replace(e, subject="Moved", change_key="ck-2")), stored, ALL)
    assert kinds(result) == ["event.updated"]
    assert result.changes[0].data["event"]["subject"] == "Moved"


def test_a_removed_event_is_deleted_once() -> None:
    e = event("A")
    stored = stored_after(plan(delta(e), {}, ALL))
    result = plan(delta(RemovedEvent("A")), stored, ALL)
    assert kinds(result) == ["event.deleted"]
    assert plan(delta(RemovedEvent("A")), stored_after(result, stored), ALL).empty


def test_removal_of_an_unknown_event_is_ignored() -> None:
    assert plan(delta(RemovedEvent("never-seen")), {}, ALL).empty


def test_the_last_report_of_an_item_in_one_read_wins() -> None:
    e = event("A")
    result = plan(delta(e, RemovedEvent("A")), {}, ALL)
    assert result.empty or result.changes == []
    result = plan(delta(RemovedEvent("A"), e), {}, ALL)
    assert kinds(result) == ["event.created"]


def test_privacy_mode_sends_only_free_busy() -> None:
    result = plan(delta(event("A", subject="Secret")), {}, Visibility(privacy_mode=True))
    payload = result.changes[0].data["event"]
    assert set(payload) == {"id", "start", "end", "all_day", "show_as"}


def test_the_import_filter_admits_only_the_configured_first_category() -> None:
    only_booking = Visibility(ImportFilter(ImportFilterMode.CATEGORIES, ("Booking",)))
    kept = event("A", categories=("booking", "Red"))
    dropped = event("B", categories=("Red", "Booking"))
    result = plan(delta(kept, dropped), {}, only_booking)
    assert [c.event_id for c in result.changes] == ["A"]
    assert set(stored_after(result)) == {"A", "B"}  # both stored, so a later category change is seen


def test_an_event_leaving_the_filter_is_deleted_for_the_host_and_entering_it_created() -> None:
    only_booking = Visibility(ImportFilter(ImportFilterMode.CATEGORIES, ("Booking",)))
    e = event("A", categories=("Booking",))
    stored = stored_after(plan(delta(e), {}, only_booking))
    left = plan(delta(replace(e, categories=("Red",))), stored, only_booking)
    assert kinds(left) == ["event.deleted"]
    assert left.changes[0].data["reason"] == "filtered"
    back = plan(delta(e), stored_after(left, stored), only_booking)
    assert kinds(back) == ["event.created"]


def test_free_events_are_hidden_when_the_tenant_says_so() -> None:
    result = plan(delta(event("A", show_as="free")), {}, Visibility(show_free_events=False))
    assert result.changes == []


def test_a_cancelled_occurrence_is_a_deletion_for_the_host() -> None:
    e = event("A")
    stored = stored_after(plan(delta(e), {}, ALL))
    assert kinds(plan(delta(replace(e, cancelled=True)), stored, ALL)) == ["event.deleted"]


def test_migration_links_host_appointments_without_announcing_them() -> None:
    known = event("A")
    by_uid = event("B", ical_uid="host-uid-7")
    new = event("C")
    links = HostLinks(by_graph_id={"A": "appt-1"}, by_ical_uid={"host-uid-7": "appt-7"})
    result = plan(delta(known, by_uid, new, complete=True, migrating=True), {}, ALL, links)
    assert [c.event_id for c in result.changes] == ["C"]
    state = stored_after(result)
    assert state["A"].appointment_id == "appt-1"
    assert state["B"].appointment_id == "appt-7"
    assert state["C"].appointment_id is None


def test_a_linked_event_edited_in_outlook_reports_its_appointment() -> None:
    e = event("A")
    stored = stored_after(plan(delta(e, migrating=True), {}, ALL, HostLinks(by_graph_id={"A": "appt-1"})))
    result = plan(delta(replace(e, subject="Edited in Outlook")), stored, ALL)
    assert kinds(result) == ["event.updated"]
    assert result.changes[0].data["appointment_id"] == "appt-1"


def test_an_occurrence_is_linked_through_its_series_master() -> None:
    occurrence = event("occ-1", series_master_id="master-1")
    links = HostLinks(by_graph_id={"master-1": "appt-series"})
    result = plan(delta(occurrence, migrating=True), {}, ALL, links)
    assert result.changes == []
    assert stored_after(result)["occ-1"].appointment_id == "appt-series"


def test_a_complete_read_deletes_what_it_did_not_see_but_forgets_what_aged_out() -> None:
    old = event("old", start=WINDOW_START - timedelta(days=2))
    gone, kept = event("gone"), event("kept")
    stored = stored_after(plan(delta(old, gone, kept), {}, ALL))
    result = plan(delta(kept, complete=True), stored, ALL)
    assert [c.event_id for c in result.changes] == ["gone"]
    assert set(stored_after(result, stored)) == {"kept"}


def test_an_all_day_event_keeps_its_dates() -> None:
    e = event("A", start=date(2026, 12, 24))
    payload = plan(delta(e), {}, ALL).changes[0].data["event"]
    assert (payload["start"], payload["end"], payload["all_day"]) == ("2026-12-24", "2026-12-25", True)


def test_the_mass_deletion_guard_holds_when_outlook_suddenly_reads_empty() -> None:
    events = [event(f"E{i}") for i in range(MASS_DELETE_MIN + 5)]
    stored = stored_after(plan(delta(*events), {}, ALL))
    held = plan(delta(complete=True), stored, ALL)
    assert held.held_deletes == len(events)
    assert held.deletes == [] and held.changes == []
    forced = plan(delta(complete=True), stored, ALL, allow_mass_delete=True)
    assert len(forced.changes) == len(events)
    assert all(c.type is ChangeType.DELETED for c in forced.changes)


def test_a_few_deletions_in_a_complete_read_pass_the_guard() -> None:
    events = [event(f"E{i}") for i in range(4)]
    stored = stored_after(plan(delta(*events), {}, ALL))
    result = plan(delta(*events[1:], complete=True), stored, ALL)
    assert kinds(result) == ["event.deleted"] and result.held_deletes == 0


def test_the_mass_deletion_guard_holds_a_delta_page_full_of_removals() -> None:
    events = [event(f"E{i}") for i in range(MASS_DELETE_MIN + 5)]
    stored = stored_after(plan(delta(*events), {}, ALL))
    removals = [RemovedEvent(e.id) for e in events]
    held = plan(delta(*removals, event("new")), stored, ALL)
    assert held.held_deletes == len(events)
    assert held.deletes == [] and kinds(held) == ["event.created"]  # the rest of the page still counts
    forced = plan(delta(*removals), stored, ALL, allow_mass_delete=True)
    assert kinds(forced) == ["event.deleted"] * len(events)


def test_a_few_removals_in_a_delta_page_pass_the_guard() -> None:
    events = [event(f"E{i}") for i in range(MASS_DELETE_MIN + 5)]
    stored = stored_after(plan(delta(*events), {}, ALL))
    result = plan(delta(*(RemovedEvent(e.id) for e in events[:3])), stored, ALL)
    assert kinds(result) == ["event.deleted"] * 3 and result.held_deletes == 0
