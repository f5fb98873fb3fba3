"""Availability end to end on the local host, the emulator and Azurite: busy times and slots answered from
the synced state (an Outlook change is in the answer once it is on the feed), the host's appointments
counted from the moment their PUT is accepted (before Outlook has them) and freed by their DELETE, series
with an exception and a cancelled occurrence, all-day and multi-day events across zones, an N-of group,
and Graph's getSchedule for a user still migrating.

One migrated organisation (adele, ben, carla, and an unmatched s-ghost) serves the module; each test uses
days of its own, so they do not see each other's events."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from shared.domain.timezones import iana_zone
from tests.e2e.test_appointments import Org, changes, cursor, delete, organisation, put, settled
from tests.e2e.test_sync import wait_for
from tests.fixtures.connector import Connector

pytestmark = pytest.mark.e2e

BASE = datetime.combine(datetime.now(UTC).date() + timedelta(days=7), time(), tzinfo=UTC)


@pytest.fixture(scope="module")
async def org(connector: Connector) -> Org:
    return await organisation(connector)


def day(n: int, hour: float = 0) -> datetime:
    """Midnight UTC of the test's day n (days apart from the other tests'), plus `hour`."""
    return BASE + timedelta(days=n, hours=hour)


def z(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def graph_time(value: datetime, zone: str = "UTC") -> dict[str, str]:
    """Graph's dateTimeTimeZone: the wall-clock time of `value` in `zone` (a Windows or IANA name)."""
    local = value.astimezone(ZoneInfo(iana_zone(zone) or zone))
    return {"dateTime": local.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": zone}


def busy(org: Org, staff_id: str, start: datetime, end: datetime) -> dict[str, Any]:
    with org.api() as api:
        answer = api.get(
            f"/api/v1/tenants/{org.domain}/staff/{staff_id}/busy", params={"start": z(start), "end": z(end)}
        )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def spans(found: dict[str, Any]) -> list[tuple[str, str]]:
    return [(b["start"], b["end"]) for b in found["busy"]]


def ask(org: Org, **question: Any) -> dict[str, Any]:
    with org.api() as api:
        answer = api.post(f"/api/v1/tenants/{org.domain}/availability", json=question)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def slots(org: Org, staff: list[str], start: datetime, end: datetime, **more: Any) -> list[str]:
    """The starts of the free hour-long slots on the hour for all of `staff`."""
    found = ask(
        org,
        participants=[{"staff_ids": staff}],
        periods=[{"start": z(start), "end": z(end)}],
        duration_minutes=60,
        interval_minutes=60,
        **more,
    )
    return [s["start"] for s in found["slots"]]


def on_feed(org: Org, since: int, kind: str, subject: str) -> bool:
    return any(
        c["type"] == kind and c["data"]["event"].get("subject") == subject for c in changes(org, since)
    )


def test_an_outlook_change_is_in_the_answer_once_it_is_on_the_feed(org: Org) -> None:
    since = cursor(org)
    subject = f"dentist {uuid.uuid4().hex[:6]}"
    made = org.outlook.create(
        org.user("adele"),
        {"subject": subject, "start": graph_time(day(0, 10)), "end": graph_time(day(0, 11))},
    )
    wait_for(lambda: on_feed(org, since, "event.created", subject))
    found = busy(org, "s-adele", day(0), day(1))
    assert found["source"] == "synced"
    assert spans(found) == [(z(day(0, 10)), z(day(0, 11)))]
    assert "subject" not in found["busy"][0] and subject not in str(found)
    assert slots(org, ["s-adele"], day(0, 9), day(0, 12)) == [z(day(0, 9)), z(day(0, 11))]

    since = cursor(org)
    org.outlook.update(
        org.user("adele"), made["id"], {"start": graph_time(day(0, 9)), "end": graph_time(day(0, 10))}
    )
    wait_for(lambda: on_feed(org, since, "event.updated", subject))
    assert slots(org, ["s-adele"], day(0, 9), day(0, 12)) == [z(day(0, 10)), z(day(0, 11))]


async def test_a_host_put_blocks_its_slot_before_outlook_has_it_and_a_delete_frees_it(
    org: Org, connector: Connector
) -> None:
    appointment_id = f"busy-{uuid.uuid4().hex[:8]}"
    body = {
        "subject": "Intake",
        "start": day(1, 14).astimezone(ZoneInfo("Europe/Amsterdam")).replace(tzinfo=None).isoformat(),
        "end": day(1, 15).astimezone(ZoneInfo("Europe/Amsterdam")).replace(tzinfo=None).isoformat(),
        "time_zone": "Europe/Amsterdam",
        "staff_ids": ["s-ben"],
    }
    async with connector.control() as control:  # Outlook refuses ben's writes: the copy stays unwritten
        fault = await control.add_fault(
            status=503, retry_after=5, method="POST", path="/events", mailbox=org.user("ben")
        )
    try:
        answer = put(org, appointment_id, body)
        assert answer.status_code == 202, answer.text
        assert slots(org, ["s-ben"], day(1, 13), day(1, 16)) == [z(day(1, 13)), z(day(1, 15))]
        found = busy(org, "s-ben", day(1), day(2))
        assert (found["source"], spans(found)) == ("synced", [(z(day(1, 14)), z(day(1, 15)))])
        with org.api() as api:
            record = api.get(f"/api/v1/tenants/{org.domain}/appointments/{appointment_id}").json()
        assert record["state"] in ("pending", "failed", "partial")  # Outlook does not have it
        assert not any(c.get("event_id") for c in record["staff"])
    finally:
        async with connector.control() as control:
            await control.remove_fault(fault["id"])

    settled(org, appointment_id, revision=1, timeout=120)  # written to Outlook now
    since = cursor(org)
    marker = f"marker {uuid.uuid4().hex[:6]}"  # once its creation is on the feed, the sync read the copy
    org.outlook.create(
        org.user("ben"), {"subject": marker, "start": graph_time(day(1, 20)), "end": graph_time(day(1, 21))}
    )
    wait_for(lambda: on_feed(org, since, "event.created", marker))
    assert delete(org, appointment_id).status_code == 202
    assert slots(org, ["s-ben"], day(1, 13), day(1, 16)) == [z(day(1, 13)), z(day(1, 14)), z(day(1, 15))]


def test_a_series_with_an_exception_and_a_cancelled_occurrence(org: Org) -> None:
    first = day(2, 8)
    series = org.outlook.create(
        org.user("carla"),
        {
            "subject": f"standup {uuid.uuid4().hex[:6]}",
            "start": graph_time(first),
            "end": graph_time(first + timedelta(minutes=30)),
            "recurrence": {
                "pattern": {"type": "daily", "interval": 1},
                "range": {
                    "type": "numbered",
                    "startDate": first.date().isoformat(),
                    "numberOfOccurrences": 4,
                },
            },
        },
    )
    instances = org.outlook.http.get(
        f"/users/{org.user('carla')}/events/{series['id']}/instances",
        params={"startDateTime": z(day(2)), "endDateTime": z(day(7))},
        headers={"Prefer": 'outlook.timezone="UTC", IdType="ImmutableId"'},
    ).json()["value"]
    by_day = {i["start"]["dateTime"][:10]: i["id"] for i in instances}
    org.outlook.delete(org.user("carla"), by_day[day(3).date().isoformat()])  # cancelled
    moved = day(4, 13)
    org.outlook.update(  # an exception
        org.user("carla"),
        by_day[day(4).date().isoformat()],
        {"start": graph_time(moved), "end": graph_time(moved + timedelta(minutes=30))},
    )
    expected = [
        (z(day(2, 8)), z(day(2, 8.5))),
        (z(day(4, 13)), z(day(4, 13.5))),
        (z(day(5, 8)), z(day(5, 8.5))),
    ]
    wait_for(lambda: spans(busy(org, "s-carla", day(2), day(6))) == expected)
    assert slots(org, ["s-carla"], day(3, 8), day(3, 9)) == [z(day(3, 8))]  # the cancelled one is free


def test_all_day_and_multi_day_events_across_zones(org: Org) -> None:
    settings = org.outlook.http.get(f"/users/{org.user('carla')}/mailboxSettings").json()
    carla_zone = ZoneInfo(iana_zone(settings["workingHours"]["timeZone"]["name"]) or "UTC")
    holiday = date.fromisoformat(day(8).date().isoformat())
    org.outlook.create(  # an all-day event entered in Tokyo's zone: a date, whatever the zone
        org.user("carla"),
        {
            "subject": "holiday",
            "isAllDay": True,
            "start": {"dateTime": f"{holiday.isoformat()}T00:00:00", "timeZone": "Tokyo Standard Time"},
            "end": {
                "dateTime": f"{(holiday + timedelta(days=1)).isoformat()}T00:00:00",
                "timeZone": "Tokyo Standard Time",
            },
            "showAs": "oof",
        },
    )
    amsterdam = ZoneInfo("Europe/Amsterdam")
    trip_start = datetime.combine(day(10).date(), time(22), tzinfo=amsterdam)
    trip_end = datetime.combine(day(12).date(), time(2), tzinfo=amsterdam)
    org.outlook.create(  # two nights away, entered in Amsterdam's zone
        org.user("adele"),
        {
            "subject": "trip",
            "start": graph_time(trip_start, "W. Europe Standard Time"),
            "end": graph_time(trip_end, "W. Europe Standard Time"),
        },
    )

    def arrived() -> bool:
        return bool(busy(org, "s-carla", day(7), day(10))["busy"]) and bool(
            busy(org, "s-adele", day(9), day(13))["busy"]
        )

    wait_for(arrived)
    found = busy(org, "s-carla", day(7), day(10))
    assert [(b["start"], b["end"], b["show_as"], b["all_day"]) for b in found["busy"]] == [
        (holiday.isoformat(), (holiday + timedelta(days=1)).isoformat(), "oof", True)
    ]
    blocked_from = datetime.combine(holiday, time(), tzinfo=carla_zone)
    blocked_to = datetime.combine(holiday + timedelta(days=1), time(), tzinfo=carla_zone)
    free = ask(  # asked in New York's zone: carla's day is still her own midnight to midnight
        org,
        participants=[{"staff_ids": ["s-carla"]}],
        periods=[{"start": z(day(7, 12)), "end": z(day(9, 12))}],
        duration_minutes=30,
        time_zone="America/New_York",
        format="periods",
    )["periods"]
    assert free == [
        {"start": z(day(7, 12)), "end": z(blocked_from)},
        {"start": z(blocked_to), "end": z(day(9, 12))},
    ]
    found = busy(org, "s-adele", day(9), day(13))
    assert spans(found) == [(z(trip_start), z(trip_end))]
    local_slots = ask(
        org,
        participants=[{"staff_ids": ["s-adele"]}],
        periods=[
            {
                "start": f"{day(10).date().isoformat()}T12:00:00",
                "end": f"{day(12).date().isoformat()}T12:00:00",
            }
        ],
        duration_minutes=60,
        interval_minutes=120,
        time_zone="America/New_York",
        format="periods",
    )["periods"]
    new_york = ZoneInfo("America/New_York")
    assert local_slots == [
        {"start": z(datetime.combine(day(10).date(), time(12), tzinfo=new_york)), "end": z(trip_start)},
        {"start": z(trip_end), "end": z(datetime.combine(day(12).date(), time(12), tzinfo=new_york))},
    ]


def test_a_group_with_two_of_three_required(org: Org) -> None:
    since = cursor(org)
    tag = uuid.uuid4().hex[:6]
    for name, hour in (("adele", 10), ("ben", 11)):
        org.outlook.create(
            org.user(name),
            {
                "subject": f"{name} {tag}",
                "start": graph_time(day(14, hour)),
                "end": graph_time(day(14, hour + 1)),
            },
        )
    wait_for(
        lambda: (
            on_feed(org, since, "event.created", f"adele {tag}")
            and on_feed(org, since, "event.created", f"ben {tag}")
        )
    )
    found = ask(
        org,
        participants=[{"staff_ids": ["s-adele", "s-ben", "s-carla"], "required": 2}],
        periods=[{"start": z(day(14, 10)), "end": z(day(14, 12))}],
        duration_minutes=60,
        interval_minutes=60,
    )
    assert [(s["start"], s["participants"]) for s in found["slots"]] == [
        (z(day(14, 10)), [{"staff_ids": ["s-ben", "s-carla"]}]),
        (z(day(14, 11)), [{"staff_ids": ["s-adele", "s-carla"]}]),
    ]
    assert {s["staff_id"]: s["source"] for s in found["staff"]} == {
        "s-adele": "synced",
        "s-ben": "synced",
        "s-carla": "synced",
    }
    with_ghost = ask(
        org,
        participants=[{"staff_ids": ["s-adele", "s-ben", "s-carla", "s-ghost"], "required": 2}],
        periods=[{"start": z(day(14, 10)), "end": z(day(14, 12))}],
        duration_minutes=60,
    )
    ghost = next(s for s in with_ghost["staff"] if s["staff_id"] == "s-ghost")
    assert ghost["source"] is None and "not matched" in ghost["error"]
    assert [s["start"] for s in with_ghost["slots"]] == [z(day(14, 10)), z(day(14, 11))]  # never the ghost


async def test_getschedule_answers_for_a_user_still_migrating(org: Org, connector: Connector) -> None:
    dora = org.user(f"dora{uuid.uuid4().hex[:4]}")
    async with connector.control() as control:
        await control.create_user(org.id, dora, display_name="Dora")
        await control.seed_events(
            org.id,
            dora,
            [
                {
                    "subject": "seeded",
                    "start": graph_time(day(16, 9)),
                    "end": graph_time(day(16, 10)),
                    "showAs": "tentative",
                }
            ],
        )
        fault = await control.add_fault(  # its calendar cannot be read through delta: it stays migrating
            status=503, retry_after=1, path="calendarView/delta", mailbox=dora
        )
    try:
        with org.api() as api:
            answer = api.put(f"/api/v1/tenants/{org.domain}/staff/s-dora", json={"upn": dora})
            assert answer.json()["match"] == "matched", answer.text
            user = api.get(f"/api/v1/tenants/{org.domain}/users", params={"q": "s-dora"}).json()["value"][0]
        assert user["state"] != "synced"
        found = busy(org, "s-dora", day(16), day(17))
        assert found["source"] == "graph"
        assert [(b["start"], b["end"], b["show_as"]) for b in found["busy"]] == [
            (z(day(16, 9)), z(day(16, 10)), "tentative")
        ]
        question = ask(
            org,
            participants=[{"staff_ids": ["s-adele", "s-dora"]}],
            periods=[{"start": z(day(16, 8)), "end": z(day(16, 11))}],
            duration_minutes=60,
            interval_minutes=60,
        )
        assert [s["start"] for s in question["slots"]] == [z(day(16, 8)), z(day(16, 10))]
        assert {s["staff_id"]: s["source"] for s in question["staff"]} == {
            "s-adele": "synced",
            "s-dora": "graph",
        }
    finally:
        async with connector.control() as control:
            await control.remove_fault(fault["id"])


def test_a_span_beyond_the_synced_window_is_answered_through_getschedule(org: Org) -> None:
    far = BASE + timedelta(days=400)
    found = busy(org, "s-adele", far, far + timedelta(days=1))
    assert found["source"] == "graph" and found["busy"] == []
