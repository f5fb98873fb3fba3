"""Meetings between mailboxes of one tenant, through raw HTTP (and msgraph-sdk once) against the whole
emulator: an event with attendees who are mailboxes of the organiser's tenant puts an attendee copy
(same iCalUId, own id) in their calendars; updates, added and removed attendees, cancellations,
series exceptions and cancelled occurrences follow; responses reach the organiser.

Each test gets its own tenant (`meetings`), so copies land in mailboxes nobody else reads.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from msgraph.generated.models.attendee import Attendee
from msgraph.generated.models.attendee_type import AttendeeType
from msgraph.generated.models.date_time_time_zone import DateTimeTimeZone
from msgraph.generated.models.email_address import EmailAddress
from msgraph.generated.models.event import Event
from msgraph.generated.users.item.events.events_request_builder import EventsRequestBuilder

from tests.contract.emulator.conftest import Connector, Receiver, credential, graph_client, raw_token
from tests.fixtures.emulator import EmulatorInfo

pytestmark = pytest.mark.contract

ZONE = "W. Europe Standard Time"
PROP = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name HostAppointmentId"
WINDOW = {"startDateTime": "2031-03-01T00:00:00Z", "endDateTime": "2031-04-30T00:00:00Z"}


@dataclass
class Org:
    """A tenant of its own: Olga organises; Sam (mail and an alias differ from his UPN) and Tia are
    staff; the printer has no mailbox."""

    emulator: EmulatorInfo
    tenant_id: str
    domain: str
    http: httpx.AsyncClient
    ids: dict[str, str]

    def upn(self, name: str) -> str:
        return f"{name}@{self.domain}"

    def path(self, name: str, rest: str = "events") -> str:
        return f"users/{quote(self.upn(name))}/{rest}"

    async def create(self, body: dict[str, Any], organizer: str = "olga", **headers: str) -> dict[str, Any]:
        response = await self.http.post(self.path(organizer), json=body, headers=headers)
        assert response.status_code == 201, response.text
        return response.json()

    async def patch(self, name: str, event_id: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.http.patch(f"{self.path(name)}/{event_id}", json=body)
        assert response.status_code == 200, response.text
        return response.json()

    async def get(self, name: str, event_id: str, **params: str) -> dict[str, Any]:
        response = await self.http.get(f"{self.path(name)}/{event_id}", params=params)
        assert response.status_code == 200, response.text
        return response.json()

    async def by_uid(self, name: str, uid: str) -> list[dict[str, Any]]:
        response = await self.http.get(self.path(name), params={"$filter": f"iCalUId eq '{uid}'"})
        assert response.status_code == 200, response.text
        return list(response.json()["value"])

    async def copy(self, name: str, uid: str) -> dict[str, Any]:
        found = await self.by_uid(name, uid)
        assert len(found) == 1, found
        return found[0]

    async def view(self, name: str) -> list[dict[str, Any]]:
        response = await self.http.get(self.path(name, "calendarView"), params={**WINDOW, "$top": "100"})
        assert response.status_code == 200, response.text
        return list(response.json()["value"])

    async def instances(self, name: str, master_id: str) -> list[dict[str, Any]]:
        response = await self.http.get(f"{self.path(name)}/{master_id}/instances", params=WINDOW)
        assert response.status_code == 200, response.text
        return list(response.json()["value"])

    async def action(self, name: str, event_id: str, verb: str, body: dict[str, Any] | None = None) -> int:
        response = await self.http.post(f"{self.path(name)}/{event_id}/{verb}", json=body or {})
        return response.status_code


@pytest.fixture
async def meetings(emulator_reset: EmulatorInfo) -> AsyncIterator[Org]:
    emulator = emulator_reset
    domain = f"mtg-{uuid.uuid4().hex[:10]}.example"
    async with emulator.control as control:
        tenant = await control.create_tenant(f"Meetings {domain}", [domain])
        tid = tenant["id"]
        people = {
            "olga": await control.create_user(tid, f"olga@{domain}", display_name="Olga Organiser"),
            "sam": await control.create_user(
                tid,
                f"sam@{domain}",
                display_name="Sam Staff",
                mail=f"samuel@{domain}",
                proxy_addresses=[f"SMTP:samuel@{domain}", f"smtp:sam.alias@{domain}"],
            ),
            "tia": await control.create_user(tid, f"tia@{domain}", display_name="Tia Staff"),
            "printer": await control.create_user(tid, f"printer@{domain}", mailbox_enabled=False),
        }
        await control.consent(tid, emulator.client_id)
    token = await raw_token(emulator, tid, emulator.client_id, emulator.client_secret)
    http = httpx.AsyncClient(
        base_url=emulator.graph + "/",
        verify=emulator.ssl_context(),
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    try:
        yield Org(emulator, tid, domain, http, {name: p["id"] for name, p in people.items()})
    finally:
        await http.aclose()


def person(address: str, name: str = "", kind: str = "required") -> dict[str, Any]:
    return {"emailAddress": {"address": address, "name": name or address}, "type": kind}


def meeting(
    org: Org, subject: str, *attendees: dict[str, Any], day: str = "2031-03-10", **extra: Any
) -> dict:
    body = {
        "subject": subject,
        "body": {"contentType": "HTML", "content": f"<p>{subject}</p>"},
        "start": {"dateTime": f"{day}T09:00:00", "timeZone": ZONE},
        "end": {"dateTime": f"{day}T10:00:00", "timeZone": ZONE},
        "location": {"displayName": "Salon 2"},
        "sensitivity": "private",
        "attendees": list(attendees) or [person(org.upn("sam")), person(org.upn("tia"))],
    }
    body.update(extra)
    return body


def weekly(count: int = 4) -> dict[str, Any]:
    return {
        "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"], "firstDayOfWeek": "monday"},
        "range": {"type": "numbered", "startDate": "2031-03-10", "numberOfOccurrences": count},
    }


# ------------------------------------------------------------------------------------ invitations


async def test_internal_attendees_get_a_copy_with_the_same_ical_uid(meetings, connector: Connector):
    org = meetings
    body = meeting(
        org,
        "Consultation",
        person("SAM.ALIAS@" + org.domain.upper(), "Sam"),  # a proxy address, any case
        person(org.upn("tia"), "Tia"),
        person("customer@example.org", "A Customer"),  # external: accepted, goes nowhere
        person(org.upn("olga"), "Olga"),  # the organiser herself
        person(org.upn("printer")),  # no mailbox
        person("ruth.lindqvist@contoso.example", "Ruth"),  # a mailbox of another tenant
        transactionId=str(uuid.uuid4()),
        singleValueExtendedProperties=[{"id": PROP, "value": "appt-1"}],
        showAs="busy",
        categories=["Customer"],
        isOnlineMeeting=True,
    )
    created = await org.create(body)
    uid = created["iCalUId"]
    assert created["isOrganizer"] is True
    assert [a["status"]["response"] for a in created["attendees"]] == ["none"] * 6

    for name in ("sam", "tia"):
        copy = await org.copy(name, uid)
        assert copy["id"] != created["id"]
        assert copy["changeKey"] != created["changeKey"]
        assert copy["iCalUId"] == uid
        assert copy["isOrganizer"] is False
        assert copy["organizer"] == {"emailAddress": {"name": "Olga Organiser", "address": org.upn("olga")}}
        assert copy["responseStatus"] == {"response": "notResponded", "time": "0001-01-01T00:00:00Z"}
        assert copy["showAs"] == "tentative"  # until accepted (Exchange adds new requests tentatively)
        assert copy["isCancelled"] is False
        assert "transactionId" not in copy
        assert copy["categories"] == []
        for key in (
            "subject",
            "body",
            "location",
            "locations",
            "start",
            "end",
            "isAllDay",
            "sensitivity",
            "recurrence",
            "attendees",
            "type",
            "onlineMeeting",
            "originalStartTimeZone",
        ):
            assert copy[key] == created[key], key
        expanded = await org.get(name, copy["id"], **{"$expand": "singleValueExtendedProperties"})
        assert expanded["singleValueExtendedProperties"] == []

    assert len(await org.by_uid("olga", uid)) == 1  # the organiser's own address got nothing more
    ruth = await connector.http.get(
        "users/ruth.lindqvist%40contoso.example/events", params={"$filter": f"iCalUId eq '{uid}'"}
    )
    assert ruth.status_code == 200 and ruth.json()["value"] == []
    printer = await org.http.get(org.path("printer"))
    assert printer.status_code == 404 and printer.json()["error"]["code"] == "MailboxNotEnabledForRESTAPI"


async def test_an_event_without_internal_attendees_stays_in_one_calendar(meetings):
    org = meetings
    created = await org.create(meeting(org, "Solo", person("someone@example.org")))
    assert await org.by_uid("sam", created["iCalUId"]) == []
    assert await org.by_uid("tia", created["iCalUId"]) == []
    plain = await org.create({k: v for k, v in meeting(org, "No attendees").items() if k != "attendees"})
    assert plain["attendees"] == []
    assert await org.view("sam") == [] and await org.view("tia") == []


async def test_a_transaction_id_replay_delivers_once(meetings):
    org = meetings
    body = meeting(org, "Retried", transactionId="7E163156-7762-4BEB-A1C6-729EA81755A7")
    first = await org.create(body)
    second = await org.create(body)
    assert first["id"] == second["id"]
    assert len(await org.by_uid("sam", first["iCalUId"])) == 1
    assert len(await org.view("sam")) == 1 and len(await org.view("tia")) == 1


async def test_a_batch_create_delivers_like_a_post(meetings):
    org = meetings
    request = {
        "id": "1",
        "method": "POST",
        "url": "/" + org.path("olga"),
        "headers": {"Content-Type": "application/json"},
        "body": meeting(org, "Batched"),
    }
    response = await org.http.post("$batch", json={"requests": [request]})
    assert response.status_code == 200
    (answer,) = response.json()["responses"]
    assert answer["status"] == 201
    uid = answer["body"]["iCalUId"]
    assert (await org.copy("sam", uid))["subject"] == "Batched"
    assert (await org.copy("tia", uid))["subject"] == "Batched"


async def test_the_sdk_sees_the_attendee_copy(meetings):
    org = meetings
    cred = credential(org.emulator, org.tenant_id, org.emulator.client_id, org.emulator.client_secret)
    graph = graph_client(org.emulator, cred)
    try:
        created = await graph.users.by_user_id(org.upn("olga")).events.post(
            Event(
                subject="SDK meeting",
                start=DateTimeTimeZone(date_time="2031-03-12T14:00:00", time_zone=ZONE),
                end=DateTimeTimeZone(date_time="2031-03-12T15:00:00", time_zone=ZONE),
                attendees=[
                    Attendee(
                        email_address=EmailAddress(address=f"samuel@{org.domain}", name="Sam"),
                        type=AttendeeType.Required,
                    )
                ],
            )
        )
        config = EventsRequestBuilder.EventsRequestBuilderGetRequestConfiguration(
            query_parameters=EventsRequestBuilder.EventsRequestBuilderGetQueryParameters(
                filter=f"iCalUId eq '{created.i_cal_u_id}'"
            )
        )
        found = await graph.users.by_user_id(org.ids["sam"]).events.get(request_configuration=config)
        assert [e.subject for e in found.value] == ["SDK meeting"]
        copy = found.value[0]
        assert copy.id != created.id and copy.is_organizer is False
        assert copy.organizer.email_address.address == org.upn("olga")
        assert copy.response_status.response.value == "notResponded"
    finally:
        await cred.close()


# ------------------------------------------------------------------------------------ change tracking


async def test_copies_reach_the_attendee_s_notifications_and_delta(meetings, receiver: Receiver):
    org = meetings
    async with org.emulator.control as control:
        now = datetime.fromisoformat((await control.clock()).replace("Z", "+00:00"))
    sub = await org.http.post(
        "subscriptions",
        json={
            "changeType": "created,updated,deleted",
            "notificationUrl": receiver.url,
            "resource": f"users/{org.ids['sam']}/events",
            "expirationDateTime": (now + timedelta(days=2)).isoformat(),
            "clientState": "meetings",
        },
    )
    assert sub.status_code == 201, sub.text
    first = await org.http.get(org.path("sam", "calendarView/delta"), params=WINDOW)
    assert first.json()["value"] == []
    delta_link = first.json()["@odata.deltaLink"]

    created = await org.create(meeting(org, "Tracked"))
    copy = await org.copy("sam", created["iCalUId"])
    resource = f"Users/{org.ids['sam']}/Events/{copy['id']}"

    def seen(change: str) -> bool:
        return any(n["changeType"] == change and n["resource"] == resource for n in receiver.notifications)

    await receiver.wait_for(lambda: seen("created"))
    rnd = await org.http.get(delta_link)
    assert [(e["id"], e["subject"]) for e in rnd.json()["value"]] == [(copy["id"], "Tracked")]
    delta_link = rnd.json()["@odata.deltaLink"]

    await org.patch("olga", created["id"], {"subject": "Tracked (moved room)"})
    await receiver.wait_for(lambda: seen("updated"))
    rnd = await org.http.get(delta_link)
    [changed] = rnd.json()["value"]
    assert changed["id"] == copy["id"] and changed["subject"] == "Tracked (moved room)"
    assert changed["changeKey"] != copy["changeKey"]
    delta_link = rnd.json()["@odata.deltaLink"]

    assert await org.action("olga", created["id"], "cancel", {"Comment": "Sorry"}) == 202
    rnd = await org.http.get(delta_link)
    [cancelled] = rnd.json()["value"]
    assert cancelled["id"] == copy["id"]
    assert cancelled["isCancelled"] is True and cancelled["subject"] == "Canceled: Tracked (moved room)"
    assert all(n["clientState"] == "meetings" for n in receiver.notifications)


# ------------------------------------------------------------------------------------ updates


async def test_organizer_updates_overwrite_the_copies_with_new_change_keys(meetings):
    org = meetings
    created = await org.create(meeting(org, "Review"))
    uid = created["iCalUId"]
    before = {name: await org.copy(name, uid) for name in ("sam", "tia")}

    # the attendee edits their own copy: allowed there only
    mine = await org.patch("sam", before["sam"]["id"], {"subject": "My review", "categories": ["Red"]})
    assert mine["subject"] == "My review"
    assert (await org.get("olga", created["id"]))["subject"] == "Review"
    assert (await org.copy("tia", uid))["subject"] == "Review"

    await org.patch(
        "olga",
        created["id"],
        {
            "subject": "Review v2",
            "body": {"contentType": "text", "content": "new agenda"},
            "location": {"displayName": "Salon 3"},
            "sensitivity": "normal",
        },
    )
    for name in ("sam", "tia"):
        copy = await org.copy(name, uid)
        assert copy["id"] == before[name]["id"]
        assert copy["changeKey"] not in (before[name]["changeKey"], mine["changeKey"])
        assert copy["subject"] == "Review v2"
        assert copy["body"]["contentType"] == "html" and copy["bodyPreview"] == "new agenda"
        assert copy["location"]["displayName"] == "Salon 3"
        assert copy["sensitivity"] == "normal"
    assert (await org.copy("sam", uid))["categories"] == ["Red"]  # the attendee's own property stays


async def test_responses_reach_the_organizer_and_a_new_time_asks_again(meetings):
    org = meetings
    created = await org.create(meeting(org, "Planning", showAs="busy", allowNewTimeProposals=True))
    uid = created["iCalUId"]
    sam, tia = await org.copy("sam", uid), await org.copy("tia", uid)

    assert await org.action("sam", sam["id"], "accept", {"comment": "ok", "sendResponse": True}) == 202
    assert await org.action("tia", tia["id"], "tentativelyAccept") == 202
    sam, tia = await org.copy("sam", uid), await org.copy("tia", uid)
    assert (sam["responseStatus"]["response"], sam["showAs"]) == ("accepted", "busy")
    assert (tia["responseStatus"]["response"], tia["showAs"]) == ("tentativelyAccepted", "tentative")
    organizer = await org.get("olga", created["id"])
    assert [a["status"]["response"] for a in organizer["attendees"]] == ["accepted", "tentativelyAccepted"]
    assert organizer["changeKey"] != created["changeKey"]
    assert organizer["attendees"][0]["status"]["time"] != "0001-01-01T00:00:00Z"

    # an update that keeps the time keeps the answers
    await org.patch("olga", created["id"], {"subject": "Planning (agenda)"})
    assert (await org.copy("sam", uid))["responseStatus"]["response"] == "accepted"
    assert [a["status"]["response"] for a in (await org.get("olga", created["id"]))["attendees"]] == [
        "accepted",
        "tentativelyAccepted",
    ]

    # the organiser can't respond to her own meeting
    response = await org.http.post(f"{org.path('olga')}/{created['id']}/accept", json={})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "ErrorCalendarIsOrganizerForAccept"

    # a new time: everyone is asked again
    await org.patch(
        "olga",
        created["id"],
        {
            "start": {"dateTime": "2031-03-10T11:00:00", "timeZone": ZONE},
            "end": {"dateTime": "2031-03-10T12:00:00", "timeZone": ZONE},
        },
    )
    sam = await org.copy("sam", uid)
    assert (sam["responseStatus"]["response"], sam["showAs"]) == ("notResponded", "tentative")
    assert sam["start"]["dateTime"] == "2031-03-10T10:00:00.0000000"
    organizer = await org.get("olga", created["id"])
    assert [a["status"]["response"] for a in organizer["attendees"]] == ["none", "none"]

    # decline: the copy leaves the attendee's calendar; the organiser sees the answer
    assert await org.action("tia", tia["id"], "decline", {"sendResponse": True}) == 202
    assert await org.by_uid("tia", uid) == []
    organizer = await org.get("olga", created["id"])
    assert [a["status"]["response"] for a in organizer["attendees"]] == ["none", "declined"]


async def test_adding_an_attendee_invites_and_removing_one_cancels(meetings):
    org = meetings
    created = await org.create(meeting(org, "Huddle", person(org.upn("sam"))))
    uid = created["iCalUId"]
    assert await org.by_uid("tia", uid) == []

    await org.patch(
        "olga", created["id"], {"attendees": [person(org.upn("sam")), person(org.upn("tia"), "Tia")]}
    )
    tia = await org.copy("tia", uid)
    assert tia["subject"] == "Huddle" and tia["responseStatus"]["response"] == "notResponded"

    await org.patch("olga", created["id"], {"attendees": [person(org.upn("tia"), "Tia")]})
    sam = await org.copy("sam", uid)
    assert sam["isCancelled"] is True
    assert sam["subject"] == "Canceled: Huddle" and sam["showAs"] == "free"
    assert (await org.copy("tia", uid))["isCancelled"] is False

    # invited again: the same copy comes back to life
    await org.patch(
        "olga", created["id"], {"attendees": [person(org.upn("tia")), person(f"samuel@{org.domain}")]}
    )
    sam_again = await org.copy("sam", uid)
    assert sam_again["id"] == sam["id"]
    assert sam_again["isCancelled"] is False and sam_again["subject"] == "Huddle"


@pytest.mark.parametrize("how", ["delete", "cancel"])
async def test_removing_the_meeting_leaves_cancelled_copies_until_the_attendee_deletes(meetings, how):
    org = meetings
    created = await org.create(meeting(org, "Fitting"))
    uid = created["iCalUId"]
    if how == "delete":
        assert (await org.http.delete(f"{org.path('olga')}/{created['id']}")).status_code == 204
    else:
        assert await org.action("olga", created["id"], "cancel") == 202
    assert await org.by_uid("olga", uid) == []
    for name in ("sam", "tia"):
        [shown] = await org.view(name)
        assert shown["iCalUId"] == uid
        assert shown["isCancelled"] is True
        assert shown["subject"] == "Canceled: Fitting"
        assert shown["showAs"] == "free"
    sam = await org.copy("sam", uid)
    assert (await org.http.delete(f"{org.path('sam')}/{sam['id']}")).status_code == 204
    assert await org.view("sam") == []
    assert len(await org.view("tia")) == 1


# ------------------------------------------------------------------------------------ series


async def test_a_recurring_meeting_carries_its_exception_and_cancelled_occurrence(meetings):
    org = meetings
    created = await org.create(meeting(org, "Weekly", recurrence=weekly(4)))
    uid = created["iCalUId"]
    copy = await org.copy("sam", uid)
    assert copy["type"] == "seriesMaster" and copy["recurrence"] == created["recurrence"]
    mine = await org.instances("olga", created["id"])
    theirs = await org.instances("sam", copy["id"])
    assert [i["iCalUId"] for i in theirs] == [i["iCalUId"] for i in mine]
    assert len({i["iCalUId"] for i in theirs}) == 4
    assert all(i["seriesMasterId"] == copy["id"] for i in theirs)

    # the organiser moves the second occurrence and cancels the third
    second, third = mine[1], mine[2]
    await org.patch(
        "olga",
        second["id"],
        {
            "subject": "Weekly (later)",
            "start": {"dateTime": "2031-03-17T15:00:00", "timeZone": ZONE},
            "end": {"dateTime": "2031-03-17T16:00:00", "timeZone": ZONE},
        },
    )
    assert await org.action("olga", third["id"], "cancel") == 202

    mine = await org.instances("olga", created["id"])
    assert [i["subject"] for i in mine] == ["Weekly", "Weekly (later)", "Weekly"]
    for name in ("sam", "tia"):
        master = await org.copy(name, uid)
        theirs = {i["iCalUId"]: i for i in await org.instances(name, master["id"])}
        assert len(theirs) == 4
        moved = theirs[second["iCalUId"]]
        assert (moved["type"], moved["subject"]) == ("exception", "Weekly (later)")
        assert moved["start"]["dateTime"] == "2031-03-17T14:00:00.0000000"
        gone = theirs[third["iCalUId"]]
        assert gone["isCancelled"] is True and gone["subject"] == "Canceled: Weekly"
        assert [i["isCancelled"] for i in theirs.values()].count(True) == 1
        # calendarView shows the same: the connector sees the cancelled occurrence as cancelled
        view = {i["iCalUId"]: i for i in await org.view(name)}
        assert view[third["iCalUId"]]["isCancelled"] is True
        assert view[second["iCalUId"]]["subject"] == "Weekly (later)"

    # a shorter series: the copies follow the pattern, occurrences past its end go
    await org.patch("olga", created["id"], {"recurrence": weekly(2)})
    master = await org.copy("sam", uid)
    assert master["recurrence"]["range"]["numberOfOccurrences"] == 2
    theirs = await org.instances("sam", master["id"])
    assert [i["subject"] for i in theirs] == ["Weekly", "Weekly (later)"]

    # the whole series is deleted: every copy occurrence is cancelled
    assert (await org.http.delete(f"{org.path('olga')}/{created['id']}")).status_code == 204
    view = await org.view("tia")
    assert len(view) == 2 and all(i["isCancelled"] for i in view)
