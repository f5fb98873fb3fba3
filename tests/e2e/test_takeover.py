"""Take over, never duplicate, end to end through the local host and the emulator: the host's EWS-era
appointment (seeded before migration with its EWS id, linked through translateExchangeIds) is updated in
place by the host's PUT; an event the host's old EWS sync writes after migration is linked, not announced,
and taken over the same way; an event made in Outlook is adopted (and bad adoptions are refused naming the
field); a meeting-mode series with an exception is updated in place (the same events, no new invitation,
the attendee's response and the Teams join URL kept)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.e2e.test_appointments import (
    AMSTERDAM,
    TODAY,
    Org,
    appointment,
    changes,
    cursor,
    daily_series,
    event,
    events,
    get,
    graph_get,
    instant,
    occurrence_days,
    only,
    organisation,
    outlook_changes,
    put,
    series_occurrence,
    settled,
    unique,
    view,
)
from tests.e2e.test_sync import Outlook, graph_event, wait_for
from tests.e2e.test_tenants import consent, create
from tests.fixtures.connector import Connector

pytestmark = pytest.mark.e2e

EWS_ERA_ID = "AAMkEWSeraIntake0001"


@pytest.fixture(scope="module")
async def org(connector: Connector) -> Org:
    """adele, ben and carla, migrated."""
    return await organisation(connector)


@pytest.fixture(scope="module")
async def ews_org(connector: Connector) -> tuple[Org, str, str]:
    """Before the migration the host's old sync had written an appointment into adele's calendar; its EWS
    id comes with her staff PUT. Answers the organisation, the appointment id and the Outlook event."""
    domain = f"ews{uuid.uuid4().hex[:8]}.example"
    appointment_id, subject = unique("ews-era")
    async with connector.control() as control:
        tenant = await control.create_tenant(f"EWS era {domain}", [domain], consent_policy="auto-accept")
        await control.create_user(tenant["id"], f"adele@{domain}", display_name="Adele")
        [seeded] = await control.seed_events(
            tenant["id"],
            f"adele@{domain}",
            [{"event": graph_event(subject, days=3, hour=11), "ews_id": EWS_ERA_ID}],
        )
    made = create(connector, {"domain": domain})
    assert made.status_code == 201, made.text
    assert consent(connector, made.json()["consent_url"]).status_code == 200
    with connector.api() as api:
        links = [{"appointment_id": appointment_id, "ews_id": EWS_ERA_ID}]
        staff = api.put(
            f"/api/v1/tenants/{domain}/staff/s-adele", json={"upn": f"adele@{domain}", "legacy_ids": links}
        )
        assert staff.json()["match"] == "matched", staff.text
        wait_for(lambda: api.get(f"/api/v1/tenants/{domain}").json()["state"] == "active", timeout=120)
    return (
        Org(connector, tenant["id"], domain, Outlook(connector, tenant["id"])),
        appointment_id,
        seeded["id"],
    )


def test_an_ews_era_appointment_migrated_then_put_is_one_event_updated(ews_org: tuple[Org, str, str]) -> None:
    org, appointment_id, seeded_id = ews_org
    adele = org.user("adele")
    migrated = [c for c in changes(org) if c["type"] in ("event.created", "user.migrated")]
    assert [c["type"] for c in migrated] == ["user.migrated"], migrated  # linked, not announced
    assert migrated[0]["data"]["linked"] == 1
    assert (
        put(org, appointment_id, appointment("Intake (host)", ["s-adele"], days=3, hour=12)).status_code
        == 202
    )
    record = settled(org, appointment_id, 1)
    assert record["state"] == "synced", record
    seeded = event(org, adele, seeded_id)  # read with immutable ids, as the connector reads
    assert seeded is not None
    seeded_id = seeded["id"]
    assert record["staff"][0]["event_id"] == seeded_id
    window = (datetime.now(UTC) - timedelta(days=1), datetime.now(UTC) + timedelta(days=30))
    mine = [e for e in view(org, adele, *window) if not e["subject"].startswith("marker ")]
    assert [(e["id"], e["subject"]) for e in mine] == [(seeded_id, "Intake (host)")]  # one event, updated
    since = cursor(org)
    marker_seen(org, "adele", since)
    assert announced(org, since, "Intake (host)") == []  # its echo is the connector's own


def staff_links(org: Org, name: str, links: list[dict[str, str]]) -> None:
    with org.api() as api:
        answer = api.put(
            f"/api/v1/tenants/{org.domain}/staff/s-{name}", json={"upn": org.user(name), "legacy_ids": links}
        )
        assert answer.status_code == 200 and answer.json()["match"] == "matched", answer.text


def announced(org: Org, since: int, subject: str) -> list[dict[str, Any]]:
    return [
        c
        for c in changes(org, since)
        if c["type"].startswith("event.") and c["data"]["event"].get("subject") == subject
    ]


def marker_seen(org: Org, user: str, since: int) -> None:
    """A user's own event reaches the feed: every earlier change of the calendar was read before it."""
    marker = f"marker {uuid.uuid4().hex[:8]}"
    org.outlook.create(org.user(user), graph_event(marker, days=1, hour=5))
    wait_for(lambda: announced(org, since, marker))


async def test_an_event_the_old_sync_writes_after_migration_is_linked_by_its_ews_id(org: Org) -> None:
    """Written by the host's old sync after the migration (seeded with its EWS id, which the host gives on
    the staff PUT), linked at the sync that reads it instead of announced, then taken over by the host's
    PUT: one event, updated."""
    since = cursor(org)
    appointment_id, subject = unique("ews-era")
    ews_id = f"AAMkEWS{uuid.uuid4().hex}"
    staff_links(org, "adele", [{"appointment_id": appointment_id, "ews_id": ews_id}])
    async with org.connector.control() as control:
        [seeded] = await control.seed_events(
            org.id, org.user("adele"), [{"event": graph_event(subject, days=3, hour=11), "ews_id": ews_id}]
        )
    marker_seen(org, "adele", since)
    assert announced(org, since, subject) == []  # linked, not announced
    answer = put(org, appointment_id, appointment(f"{subject} (host)", ["s-adele"], days=3, hour=12))
    assert answer.status_code == 202, answer.text
    record = settled(org, appointment_id, 1)
    assert record["state"] == "synced", record
    adele = org.user("adele")
    immutable = only(events(org, adele, f"{subject} (host)"), "the taken-over event")
    assert events(org, adele, subject) == []  # no second event beside it
    assert record["staff"][0]["event_id"] == immutable["id"]
    assert (
        org.outlook.http.get(f"/users/{adele}/events/{seeded['id']}").json()["subject"] == f"{subject} (host)"
    )
    marker_seen(org, "adele", since)
    assert announced(org, since, f"{subject} (host)") == []  # its echo is the connector's own


async def test_an_event_the_old_sync_stamps_after_migration_is_linked_not_announced(org: Org) -> None:
    """Written after the migration with the connector's extended property (as the old sync was told to):
    linked at the sync that reads it, and a later PUT of the appointment updates it."""
    since = cursor(org)
    appointment_id, subject = unique("stamped")
    stamp = {
        "id": "String {4c1b7a3e-2f67-4b8e-9a51-6d0c3a9e2b17} Name AppointmentId",
        "value": appointment_id,
    }
    made = org.outlook.create(
        org.user("ben"), graph_event(subject, days=4, hour=9, singleValueExtendedProperties=[stamp])
    )
    marker_seen(org, "ben", since)
    assert announced(org, since, subject) == []
    assert put(org, appointment_id, appointment(f"{subject} v2", ["s-ben"], days=4)).status_code == 202
    assert settled(org, appointment_id, 1)["staff"][0]["event_id"] == made["id"]
    assert [e["id"] for e in events(org, org.user("ben"), f"{subject} v2")] == [made["id"]]


def test_an_outlook_event_is_adopted_and_bad_adoptions_are_refused(org: Org) -> None:
    since = cursor(org)
    subject = f"made in Outlook {uuid.uuid4().hex[:8]}"
    adele, ben = org.user("adele"), org.user("ben")
    mine = org.outlook.create(adele, graph_event(subject, days=5, hour=14))
    bens = org.outlook.create(ben, graph_event(f"{subject} (ben)", days=5, hour=14))
    wait_for(lambda: announced(org, since, subject))  # an Outlook event, told as such
    appointment_id, host_subject = unique("adopted")
    body = appointment(host_subject, ["s-adele"], days=5, hour=15)

    refused = {
        "does not exist": ({"staff_id": "s-adele", "event_id": "AAMkNoSuchEvent"}, 422),
        "in another staff member's calendar": ({"staff_id": "s-adele", "event_id": bens["id"]}, 422),
    }
    for case, (outlook, status) in refused.items():
        answer = put(org, f"{appointment_id}-bad", {**body, "outlook": outlook})
        assert (answer.status_code, answer.json()["error"]["field"]) == (status, "outlook.event_id"), case
        assert get(org, f"{appointment_id}-bad").status_code == 404, case

    answer = put(org, appointment_id, {**body, "outlook": {"staff_id": "s-adele", "event_id": mine["id"]}})
    assert answer.status_code == 202, answer.text
    record = settled(org, appointment_id, 1)
    assert (record["state"], record["staff"][0]["event_id"]) == ("synced", mine["id"]), record
    assert events(org, adele, subject) == []
    assert [e["id"] for e in events(org, adele, host_subject)] == [mine["id"]]

    taken = put(
        org,
        f"{appointment_id}-again",
        {**body, "outlook": {"staff_id": "s-adele", "event_id": mine["id"]}},
    )  # already the host's, under another appointment id
    assert (taken.status_code, taken.json()["error"]["field"]) == (409, "outlook.event_id"), taken.text
    assert get(org, f"{appointment_id}-again").status_code == 404

    # It is the host's now: an Outlook edit is a change of the appointment (host wins puts it back).
    after = cursor(org)
    org.outlook.update(adele, mine["id"], {"subject": "edited in Outlook"})
    wait_for(
        lambda: [
            c
            for c in changes(org, after)
            if c["type"] == "appointment.changed_in_outlook" and c["data"]["appointment_id"] == appointment_id
        ]
    )
    assert [
        c
        for c in changes(org, after)
        if c["type"].startswith("event.") and c["data"]["event"]["id"] == mine["id"]
    ] == []
    wait_for(lambda: (event(org, adele, mine["id"]) or {}).get("subject") == host_subject)


# --- a meeting-mode series, updated in place ------------------------------------------------------------


@pytest.fixture(scope="module")
async def meeting_org(connector: Connector) -> Org:
    return await organisation(connector, settings={"multi_staff_mode": "meeting"})


def test_a_meeting_series_with_an_exception_is_updated_in_place(meeting_org: Org) -> None:
    org = meeting_org
    appointment_id, subject = unique("standup")
    first = TODAY + timedelta(days=20)
    adele, ben = org.user("adele"), org.user("ben")

    def at(days: int, hour: int) -> str:
        return f"{first + timedelta(days=days)}T{hour:02d}:00:00"

    def series(title: str, location: str, overrides: list[dict[str, str]]) -> dict[str, Any]:
        return {
            "subject": title,
            "location": location,
            "start": at(0, 9),
            "end": at(0, 10),
            "time_zone": AMSTERDAM,
            "staff_ids": ["s-adele", "s-ben"],
            "video": True,
            "recurrence": {
                "rrule": "FREQ=DAILY;COUNT=5",
                "exdates": [(first + timedelta(days=1)).isoformat()],
                "overrides": overrides,
            },
        }

    moved = {"recurrence_id": at(2, 9), "start": at(2, 13), "end": at(2, 14), "subject": "moved"}
    assert put(org, appointment_id, series(subject, "Room 1", [moved])).status_code == 202
    before = settled(org, appointment_id, 1, timeout=120)
    assert before["state"] == "synced", before
    held = {c["staff_id"]: c for c in before["staff"]}
    master_id, bens_id = held["s-adele"]["event_id"], held["s-ben"]["event_id"]
    join_url = before["meeting"]["join_url"]
    assert join_url
    accepted = org.outlook.http.post(f"/users/{ben}/events/{bens_id}/accept", json={"sendResponse": True})
    assert accepted.status_code == 202, accepted.text
    since = cursor(org)

    fourth = {"recurrence_id": at(3, 9), "start": at(3, 9), "end": at(3, 10), "subject": "fourth"}
    changed = series(f"{subject} v2", "Room 2", [{**moved, "subject": "moved v2"}, fourth])
    assert put(org, appointment_id, changed).status_code == 202
    after = settled(org, appointment_id, 2, timeout=120)
    assert after["state"] == "synced", after
    now_held = {c["staff_id"]: c for c in after["staff"]}
    assert (now_held["s-adele"]["event_id"], now_held["s-ben"]["event_id"]) == (master_id, bens_id)
    assert after["meeting"]["join_url"] == join_url
    master = event(org, adele, master_id)
    assert master is not None and master["subject"] == f"{subject} v2"
    assert master["onlineMeeting"]["joinUrl"] == join_url
    responses = {a["emailAddress"]["address"].lower(): a["status"]["response"] for a in master["attendees"]}
    assert responses[ben] == "accepted"
    bens_copy = event(org, ben, bens_id)
    assert bens_copy is not None and bens_copy["responseStatus"]["response"] == "accepted"
    assert not bens_copy.get("isCancelled")
    # no new invitation: ben's calendar holds that one copy of the meeting, never a cancelled one
    same = graph_get(org, f"/users/{ben}/events", **{"$filter": f"iCalUId eq '{master['iCalUId']}'"})
    assert [e["id"] for e in same] == [bens_id]
    assert not [e for e in events(org, ben, f"Canceled: {subject}")]
    # the occurrences: the series' texts, the exdate still cancelled, both overrides in place
    window = (
        datetime.combine(first, time(), UTC) - timedelta(days=1),
        datetime.combine(first, time(), UTC) + timedelta(days=7),
    )
    zone = ZoneInfo(AMSTERDAM)

    def occurrences(user: str, series_id: str) -> list[tuple[str, str]]:
        found = [  # an attendee sees the cancelled occurrence as cancelled (Exchange's meeting update)
            e
            for e in view(org, user, *window)
            if e.get("seriesMasterId") == series_id and not e.get("isCancelled")
        ]
        return sorted(
            (instant(e["start"]).astimezone(zone).replace(tzinfo=None).isoformat(), e["subject"])
            for e in found
        )

    for user, series_id in ((adele, master_id), (ben, bens_id)):
        assert occurrences(user, series_id) == [
            (at(0, 9), f"{subject} v2"),
            (at(2, 13), "moved v2"),
            (at(3, 9), "fourth"),
            (at(4, 9), f"{subject} v2"),
        ], user
    invitations = [c for c in changes(org, since) if c["type"] == "event.created"]
    assert not invitations, invitations

    # The host drops both overrides: the occurrences are put back in place, the series stays the same one.
    assert put(org, appointment_id, series(f"{subject} v3", "Room 2", [])).status_code == 202
    last = settled(org, appointment_id, 3, timeout=120)
    assert last["state"] == "synced", last
    assert [c["event_id"] for c in last["staff"]] == [master_id, bens_id]
    for user, series_id in ((adele, master_id), (ben, bens_id)):
        assert occurrences(user, series_id) == [(at(day, 9), f"{subject} v3") for day in (0, 2, 3, 4)], user
    master = event(org, adele, master_id)
    assert master is not None and master["onlineMeeting"]["joinUrl"] == join_url
    responses = {a["emailAddress"]["address"].lower(): a["status"]["response"] for a in master["attendees"]}
    assert responses[ben] == "accepted"


def test_host_wins_puts_an_occurrence_edited_in_outlook_back_in_place(org: Org) -> None:
    since = cursor(org)
    first = TODAY + timedelta(days=26)
    appointment_id, subject = daily_series(org, "occ-in-place", first)
    adele = org.user("adele")
    master_id = only(events(org, adele, subject), "series masters")["id"]
    occurrence = series_occurrence(org, adele, subject, first + timedelta(days=2))
    org.outlook.update(adele, occurrence["id"], {"subject": f"{subject} (edited in Outlook)"})
    [reported] = wait_for(lambda: outlook_changes(org, since, appointment_id), timeout=20)
    assert reported["data"]["resolution"] == "reverted", reported
    expected = [(first + timedelta(days=k), subject) for k in range(5)]
    wait_for(lambda: occurrence_days(org, adele, subject, first) == expected, timeout=30)
    assert [e["id"] for e in events(org, adele, subject)] == [master_id]  # the same series, not made anew
    assert settled(org, appointment_id, 1)["staff"][0]["event_id"] == master_id
