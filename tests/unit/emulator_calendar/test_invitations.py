"""Meeting delivery between calendar stores (m365emulator.calendar.invitations), without HTTP: what
the router is asked, what copies hold, occurrence-level responses, hidden attendee lists, and the
directory's address index the emulator's router uses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from m365emulator.calendar.model import ChangeEvent, MailboxOwner
from m365emulator.calendar.render import View, render
from m365emulator.calendar.store import CalendarStore
from m365emulator.clock import Clock
from m365emulator.directory import Directory
from m365emulator.errors import GraphError

TENANT = "8a6f4c1e-0000-4000-8000-000000000001"
ZONE = "W. Europe Standard Time"


class Tenant:
    """Three mailboxes with a counting router (address → store), like Mailboxes does."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.asked: list[str] = []
        self.changes: list[tuple[str, ChangeEvent]] = []
        self.stores: dict[str, CalendarStore] = {}
        for name in ("olga", "sam", "tia"):
            owner = MailboxOwner(
                TENANT, f"id-{name}", f"{name}@x.example", f"{name}@x.example", name.title(), ZONE
            )
            self.stores[name] = CalendarStore(owner, self.clock, self._recorder(name), router=self.route)

    def _recorder(self, name: str) -> Any:
        return lambda change: self.changes.append((name, change))

    def route(self, address: str) -> CalendarStore | None:
        self.asked.append(address)
        return (
            self.stores.get(address.lower().split("@")[0]) if address.lower().endswith("@x.example") else None
        )

    def copy(self, name: str, uid: str) -> Any:
        store = self.stores[name]
        found = [e for e in store.list_events() if e.ical_uid == uid]
        assert len(found) <= 1
        return found[0] if found else None

    def json(self, name: str, ev: Any, day: Any = None) -> dict[str, Any]:
        return render(ev, View(self.stores[name].owner), occurrence_of=day)


def payload(*attendees: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "subject": "Fitting",
        "start": {"dateTime": "2031-03-10T09:00:00", "timeZone": ZONE},
        "end": {"dateTime": "2031-03-10T10:00:00", "timeZone": ZONE},
    }
    if attendees:
        body["attendees"] = [{"emailAddress": {"address": a, "name": a}} for a in attendees]
    body.update(extra)
    return body


@pytest.fixture
def tenant() -> Tenant:
    return Tenant()


def test_events_without_attendees_never_ask_the_router(tenant):
    olga = tenant.stores["olga"]
    olga.create(payload())
    olga.create(payload(attendees=[]))
    ev = olga.create(payload())
    olga.update(ev.id, {"subject": "moved"}, None)
    olga.delete(ev.id)
    assert tenant.asked == []
    assert [name for name, _ in tenant.changes] == ["olga"] * 5


def test_seeding_never_delivers(tenant):
    tenant.stores["olga"].seed_event(payload("sam@x.example"))
    assert tenant.asked == []
    assert tenant.stores["sam"].event_count() == 0


def test_one_copy_per_mailbox_whatever_the_aliases(tenant):
    olga = tenant.stores["olga"]
    ev = olga.create(payload("sam@x.example", "SAM@X.EXAMPLE", "olga@x.example", "guest@y.example"))
    assert tenant.stores["sam"].event_count() == 1
    assert olga.event_count() == 1
    copy = tenant.copy("sam", ev.ical_uid)
    assert copy.id != ev.id and copy.transaction_id is None and copy.ext is None
    assert [(name, c.change_type, c.event_id) for name, c in tenant.changes] == [
        ("olga", "created", ev.id),
        ("sam", "created", copy.id),
    ]


def test_hidden_attendee_lists_show_each_attendee_only_themselves(tenant):
    olga = tenant.stores["olga"]
    ev = olga.create(payload("sam@x.example", "tia@x.example", "guest@y.example", hideAttendees=True))
    sam = tenant.json("sam", tenant.copy("sam", ev.ical_uid))
    assert [a["emailAddress"]["address"] for a in sam["attendees"]] == ["sam@x.example"]
    assert len(tenant.json("olga", ev)["attendees"]) == 3


def test_organizer_s_free_time_stays_free_for_attendees(tenant):
    ev = tenant.stores["olga"].create(payload("sam@x.example", showAs="free"))
    assert tenant.json("sam", tenant.copy("sam", ev.ical_uid))["showAs"] == "free"


def test_an_occurrence_answered_alone_becomes_an_exception_of_the_copy(tenant):
    olga, sam = tenant.stores["olga"], tenant.stores["sam"]
    recurrence = {
        "pattern": {"type": "daily", "interval": 1},
        "range": {"type": "numbered", "startDate": "2031-03-10", "numberOfOccurrences": 3},
    }
    ev = olga.create(payload("sam@x.example", recurrence=recurrence))
    copy = tenant.copy("sam", ev.ical_uid)
    window = (datetime(2031, 3, 1, tzinfo=UTC), datetime(2031, 4, 1, tzinfo=UTC))
    occurrences = sam.instances_of(copy, *window)
    sam.respond(occurrences[1].id, "accept", {"sendResponse": True})
    shown = [
        tenant.json("sam", i.event, i.original_date if i.is_occurrence else None) for i in sam.view(*window)
    ]
    assert [s["responseStatus"]["response"] for s in shown] == ["notResponded", "accepted", "notResponded"]
    assert [s["type"] for s in shown] == ["occurrence", "exception", "occurrence"]
    assert len({s["iCalUId"] for s in shown}) == 3
    # occurrence-level answers stay in the attendee's calendar
    assert tenant.json("olga", ev)["attendees"][0]["status"]["response"] == "none"

    sam.respond(occurrences[2].id, "decline", {})
    assert [i.original_date.day for i in sam.view(*window)] == [10, 11]


def test_only_attendees_can_respond(tenant):
    olga = tenant.stores["olga"]
    ev = olga.create(payload("sam@x.example"))
    for action, code in (
        ("accept", "ErrorCalendarIsOrganizerForAccept"),
        ("tentativelyAccept", "ErrorCalendarIsOrganizerForTentative"),
        ("decline", "ErrorCalendarIsOrganizerForDecline"),
    ):
        with pytest.raises(GraphError) as err:
            olga.respond(ev.id, action, {})
        assert (err.value.status, err.value.code) == (400, code)


def test_a_new_time_proposal_needs_a_response_and_permission(tenant):
    ev = tenant.stores["olga"].create(payload("sam@x.example", allowNewTimeProposals=False))
    copy = tenant.copy("sam", ev.ical_uid)
    slot = {
        "start": {"dateTime": "2031-03-11T09:00:00", "timeZone": ZONE},
        "end": {"dateTime": "2031-03-11T10:00:00", "timeZone": ZONE},
    }
    with pytest.raises(GraphError) as err:
        tenant.stores["sam"].respond(copy.id, "tentativelyAccept", {"proposedNewTime": slot})
    assert err.value.status == 400


def test_no_response_sent_leaves_the_organizer_untouched(tenant):
    ev = tenant.stores["olga"].create(payload("sam@x.example"))
    key = ev.change_key
    tenant.stores["sam"].respond(tenant.copy("sam", ev.ical_uid).id, "accept", {"SendResponse": False})
    assert ev.change_key == key
    assert tenant.json("sam", tenant.copy("sam", ev.ical_uid))["responseStatus"]["response"] == "accepted"


# ---------------------------------------------------------------------------- the directory's index


def test_directory_finds_users_by_any_address_in_o1_and_follows_changes():
    d = Directory()
    contoso = d.add_tenant("Contoso", ["contoso.example"])
    other = d.add_tenant("Other", ["other.example"])
    user = d.add_user(
        contoso.id,
        "bianca.pisani@contoso.example",
        "Bianca",
        mail="bianca.rossi@contoso.example",
        proxy_addresses=[
            "SMTP:bianca.rossi@contoso.example",
            "smtp:bp@contoso.example",
            "SIP:bp@contoso.example",
        ],
    )
    for address in ("BIANCA.PISANI@contoso.example", "bianca.rossi@CONTOSO.example", " bp@contoso.example "):
        assert d.user_by_address(contoso.id, address) is user
    assert d.user_by_address(other.id, "bp@contoso.example") is None
    assert d.user_by_address(contoso.id, "nobody@contoso.example") is None

    d.update_user(user, {"proxy_addresses": ["SMTP:bianca.rossi@contoso.example", "smtp:b@contoso.example"]})
    assert d.user_by_address(contoso.id, "bp@contoso.example") is None
    assert d.user_by_address(contoso.id, "b@contoso.example") is user
    d.update_user(user, {"upn": "bianca@contoso.example", "mail": "bianca@contoso.example"})
    assert d.user_by_address(contoso.id, "bianca.pisani@contoso.example") is None
    assert d.user_by_address(contoso.id, "bianca.rossi@contoso.example") is user  # still a proxy address
    assert d.user_by_address(contoso.id, "bianca@contoso.example") is user
