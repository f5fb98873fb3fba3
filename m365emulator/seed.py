"""Seeds: `demo` (the vendor, its connector app and platform identity, the Contoso customer with 36
people and realistic calendars, a Fabrikam customer with its own app registration) and a bulk
generator of N users x M events for benchmarks. Deterministic for a given random seed, except the
secrets, which are fresh per process unless passed back in (a full reset keeps them)."""

from __future__ import annotations

import base64
import logging
import random
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from m365emulator.core import Emulator
from m365emulator.directory import GRAPH_PERMISSIONS, User, new_secret_value
from m365emulator.working_hours import WorkingHours

log = logging.getLogger("m365emulator.seed")

CONNECTOR_REDIRECTS = [
    "http://127.0.0.1:7071/api/consent/callback",
    "http://localhost:7071/api/consent/callback",
]

#: Windows zone name (what Exchange reports) → IANA (to place the events)
ZONES = {
    "Pacific Standard Time": "America/Los_Angeles",
    "Eastern Standard Time": "America/New_York",
    "Central Standard Time": "America/Chicago",
    "GMT Standard Time": "Europe/London",
    "W. Europe Standard Time": "Europe/Berlin",
    "Romance Standard Time": "Europe/Paris",
    "India Standard Time": "Asia/Kolkata",
    "Tokyo Standard Time": "Asia/Tokyo",
    "AUS Eastern Standard Time": "Australia/Sydney",
}

# (given name, surname, Windows zone, job title, department)
PEOPLE: list[tuple[str, str, str, str, str]] = [
    ("Adele", "Vance", "Pacific Standard Time", "Retail Manager", "Retail"),
    ("Alex", "Wilber", "Pacific Standard Time", "Marketing Assistant", "Marketing"),
    ("Allan", "Deyoung", "Eastern Standard Time", "Corporate Security Officer", "Security"),
    ("Bianca", "Pisani", "Eastern Standard Time", "Sales Representative", "Sales"),
    ("Brian", "Johnson", "Central Standard Time", "Accountant", "Finance"),
    ("Cameron", "White", "Central Standard Time", "Consultant", "Consulting"),
    ("Christie", "Cline", "Pacific Standard Time", "Senior Buyer", "Purchasing"),
    ("Debra", "Berger", "Eastern Standard Time", "Administrative Assistant", "Executive Management"),
    ("Delia", "Dennis", "GMT Standard Time", "Office Manager", "Operations"),
    ("Diego", "Siciliani", "W. Europe Standard Time", "HR Manager", "Human Resources"),
    ("Emily", "Braun", "W. Europe Standard Time", "Budget Analyst", "Finance"),
    ("Enrico", "Cattaneo", "W. Europe Standard Time", "Attorney", "Legal"),
    ("Gerhart", "Moller", "W. Europe Standard Time", "Project Lead", "Engineering"),
    ("Grady", "Archie", "Central Standard Time", "Designer", "Research & Development"),
    ("Henrietta", "Mueller", "W. Europe Standard Time", "Developer", "Engineering"),
    ("Irvin", "Sayers", "GMT Standard Time", "Director", "Research & Development"),
    ("Isaiah", "Langer", "Eastern Standard Time", "Sales Rep", "Sales"),
    ("Johanna", "Lorenz", "W. Europe Standard Time", "Senior Engineer", "Engineering"),
    ("Joni", "Sherman", "Pacific Standard Time", "Paralegal", "Legal"),
    ("Jordan", "Miller", "Eastern Standard Time", "Marketing Manager", "Marketing"),
    ("Lee", "Gu", "Tokyo Standard Time", "Director", "Manufacturing"),
    ("Lidia", "Holloway", "Romance Standard Time", "Product Manager", "Engineering"),
    ("Lynne", "Robbins", "Central Standard Time", "Planner", "Retail"),
    ("Mario", "Rogers", "Romance Standard Time", "Service Technician", "Operations"),
    ("Megan", "Bowen", "Pacific Standard Time", "Marketing Manager", "Marketing"),
    ("Miriam", "Graham", "Pacific Standard Time", "Director", "Sales & Marketing"),
    ("Nestor", "Wilke", "Eastern Standard Time", "Director", "Operations"),
    ("Patti", "Fernandez", "Eastern Standard Time", "President", "Executive Management"),
    ("Pradeep", "Gupta", "India Standard Time", "Accountant", "Finance"),
    ("Priya", "Raman", "India Standard Time", "Developer", "Engineering"),
    ("Raul", "Razo", "Central Standard Time", "Sales Representative", "Sales"),
    ("Sanjay", "Patel", "India Standard Time", "Support Engineer", "Support"),
    ("Ruth", "Lindqvist", "GMT Standard Time", "Customer Success Lead", "Support"),
    ("Yuki", "Tanaka", "Tokyo Standard Time", "Account Executive", "Sales"),
    ("Olivia", "Harper", "AUS Eastern Standard Time", "Regional Manager", "Sales"),
    ("Noah", "Fischer", "W. Europe Standard Time", "Recruiter", "Human Resources"),
]


@dataclass
class DemoIdentity:
    """What a full reset must keep stable: ids and secrets handed out in the ready line."""

    vendor_tenant_id: str
    contoso_tenant_id: str
    fabrikam_tenant_id: str
    client_id: str
    client_secret: str
    platform_client_id: str
    platform_client_secret: str
    fabrikam_client_id: str
    fabrikam_client_secret: str

    @classmethod
    def fresh(cls, rng: random.Random) -> DemoIdentity:
        def rid() -> str:
            return str(uuid.UUID(int=rng.getrandbits(128), version=4))

        return cls(
            vendor_tenant_id=rid(),
            contoso_tenant_id=rid(),
            fabrikam_tenant_id=rid(),
            client_id=rid(),
            client_secret=new_secret_value(),
            platform_client_id=rid(),
            platform_client_secret=new_secret_value(),
            fabrikam_client_id=rid(),
            fabrikam_client_secret=new_secret_value(),
        )


def ews_id(rng: random.Random) -> str:
    return "AAMkAD" + base64.b64encode(rng.randbytes(96)).decode()


# --- events ---------------------------------------------------------------------------------------


def _dt(day: date, at: time) -> str:
    return datetime.combine(day, at).strftime("%Y-%m-%dT%H:%M:%S")


def _event(
    subject: str,
    day: date,
    start: time,
    minutes: int,
    zone: str,
    *,
    attendees: list[User] | None = None,
    location: str | None = None,
    body: str = "",
    recurrence: dict[str, Any] | None = None,
    show_as: str = "busy",
    categories: list[str] | None = None,
    online: bool = False,
) -> dict[str, Any]:
    begin = datetime.combine(day, start)
    end = begin + timedelta(minutes=minutes)
    payload: dict[str, Any] = {
        "subject": subject,
        "body": {"contentType": "html", "content": f"<p>{body or subject}</p>"},
        "start": {"dateTime": begin.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": zone},
        "end": {"dateTime": end.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": zone},
        "showAs": show_as,
        "categories": categories or [],
    }
    if location:
        payload["location"] = {"displayName": location}
    if attendees:
        payload["attendees"] = [
            {"type": "required", "emailAddress": {"name": a.display_name, "address": a.mail or a.upn}}
            for a in attendees
        ]
    if recurrence:
        payload["recurrence"] = recurrence
    if online:
        payload["isOnlineMeeting"] = True
        payload["onlineMeetingProvider"] = "teamsForBusiness"
    return payload


def _all_day(subject: str, day: date, days: int, zone: str, *, show_as: str = "oof") -> dict[str, Any]:
    return {
        "subject": subject,
        "isAllDay": True,
        "start": {"dateTime": _dt(day, time(0)), "timeZone": zone},
        "end": {"dateTime": _dt(day + timedelta(days=days), time(0)), "timeZone": zone},
        "showAs": show_as,
        "categories": [],
    }


def _monday(today: date) -> date:
    return today - timedelta(days=today.weekday())


def demo_calendar(user: User, team: list[User], rng: random.Random, today: date) -> list[dict[str, Any]]:
    """A realistic few weeks for one person: standups, a weekly team meeting, 1:1s, customer calls,
    a monthly review, all-day events, and meetings set in other people's time zones."""
    zone = user.time_zone
    monday = _monday(today)
    weekdays = ["monday", "tuesday", "wednesday", "thursday", "friday"]
    others = [p for p in team if p.id != user.id]
    first = today.replace(day=1)
    first_tuesday = first + timedelta(days=(1 - first.weekday()) % 7)
    events = [
        _event(
            "Daily stand-up",
            monday - timedelta(days=28),
            time(9, 15),
            15,
            zone,
            attendees=rng.sample(others, 4),
            location="Teams",
            online=True,
            recurrence={
                "pattern": {
                    "type": "weekly",
                    "interval": 1,
                    "daysOfWeek": weekdays,
                    "firstDayOfWeek": "monday",
                },
                "range": {"type": "noEnd", "startDate": (monday - timedelta(days=28)).isoformat()},
            },
        ),
        _event(
            "Team sync",
            monday - timedelta(days=21),
            time(10 + rng.randint(0, 4), 0),
            60,
            zone,
            attendees=rng.sample(others, 6),
            location=f"Conference Room {rng.choice(['Adams', 'Baker', 'Crystal', 'Stevens'])}",
            recurrence={
                "pattern": {
                    "type": "weekly",
                    "interval": 1,
                    "daysOfWeek": [rng.choice(weekdays[1:4])],
                    "firstDayOfWeek": "sunday",
                },
                "range": {
                    "type": "numbered",
                    "startDate": (monday - timedelta(days=21)).isoformat(),
                    "numberOfOccurrences": 20,
                },
            },
        ),
        _event(
            "Monthly business review",
            first_tuesday,
            time(15, 0),
            90,
            zone,
            attendees=rng.sample(others, 8),
            categories=["Red category"],
            recurrence={
                "pattern": {
                    "type": "relativeMonthly",
                    "interval": 1,
                    "daysOfWeek": ["tuesday"],
                    "index": "first",
                },
                "range": {
                    "type": "endDate",
                    "startDate": first_tuesday.isoformat(),
                    "endDate": (first_tuesday + timedelta(days=365)).isoformat(),
                },
            },
        ),
    ]
    manager = rng.choice(others)
    events.append(
        _event(
            f"1:1 {user.given_name} / {manager.given_name}",
            monday + timedelta(days=rng.randint(0, 4)),
            time(13, 30),
            30,
            zone,
            attendees=[manager],
            recurrence={
                "pattern": {
                    "type": "weekly",
                    "interval": 2,
                    "daysOfWeek": ["thursday"],
                    "firstDayOfWeek": "sunday",
                },
                "range": {"type": "noEnd", "startDate": monday.isoformat()},
            },
        )
    )
    for week in range(-2, 4):
        for _ in range(rng.randint(1, 3)):
            day = monday + timedelta(days=7 * week + rng.randint(0, 4))
            other = rng.choice(others)
            foreign = other.time_zone != zone and rng.random() < 0.5
            events.append(
                _event(
                    rng.choice(
                        [
                            "Customer call: Litware",
                            "Quarterly planning",
                            "Interview: backend engineer",
                            "Design review",
                            "Vendor demo",
                            "Budget check-in",
                            "Lunch with the Fabrikam team",
                        ]
                    )
                    + (f" ({other.given_name}'s time)" if foreign else ""),
                    day,
                    time(rng.choice([8, 9, 11, 14, 16]), rng.choice([0, 30])),
                    rng.choice([30, 45, 60]),
                    other.time_zone if foreign else zone,
                    attendees=[other],
                    location=rng.choice([None, "Teams", "Building 4, 2nd floor"]),
                    show_as=rng.choice(["busy", "busy", "tentative"]),
                    online=rng.random() < 0.3,
                )
            )
    events.append(_all_day("Out of office", monday + timedelta(days=7 * rng.randint(1, 3) + 4), 1, zone))
    events.append(
        _all_day("Company offsite", monday + timedelta(days=14), 2, zone, show_as="busy"),
    )
    events.append(
        _all_day(
            "Focus day: no meetings", monday + timedelta(days=rng.randint(1, 4)), 1, zone, show_as="free"
        )
    )
    return events


def seed_calendars(emu: Emulator, users: list[User], rng: random.Random) -> int:
    """Seed through the calendar store when the calendar part is there; returns events seeded."""
    if not emu.mailboxes.available:
        return 0
    today = emu.clock.now().date()
    count = failures = 0
    team = [u for u in users if u.mailbox_enabled]
    for user in team:
        store = emu.mailboxes.store(user)
        for index, payload in enumerate(demo_calendar(user, team, rng, today)):
            try:
                store.seed_event(payload, ews_id=ews_id(rng) if index % 3 == 0 else None)
                count += 1
            except Exception as exc:  # the calendar part is someone else's; keep the emulator up
                failures += 1
                if failures <= 3:
                    log.warning("seeding an event for %s failed: %s", user.upn, exc)
    if failures:
        log.warning("%d seeded events were refused by the calendar store", failures)
    return count


# --- the demo organisation ------------------------------------------------------------------------


def seed_demo(emu: Emulator, identity: DemoIdentity | None = None) -> dict[str, Any]:
    rng = random.Random(20261122)  # noqa: S311 - demo data, not security
    ident = identity or DemoIdentity.fresh(rng)
    d = emu.directory
    vendor = d.add_tenant(
        "Northwind Scheduling", ["northwind-scheduling.example"], tenant_id=ident.vendor_tenant_id
    )
    connector = d.add_app(
        "Northwind Calendar Connector",
        vendor.id,
        client_id=ident.client_id,
        multi_tenant=True,
        redirect_uris=list(CONNECTOR_REDIRECTS),
        permissions=list(GRAPH_PERMISSIONS),
    )
    d.add_secret(connector.client_id, value=ident.client_secret, display_name="connector")
    platform = d.add_app(
        "Northwind Connector Platform Identity", vendor.id, client_id=ident.platform_client_id
    )
    d.add_secret(platform.client_id, value=ident.platform_client_secret, display_name="platform")
    emu.vault.tenant_id = vendor.id
    emu.vault.grant(vendor.id, platform.client_id)
    emu.vault.set("graph-client-secret", ident.client_secret, emu.clock.now())

    contoso = d.add_tenant(
        "Contoso", ["contoso.example", "contoso.onmicrosoft.example"], tenant_id=ident.contoso_tenant_id
    )
    users: list[User] = []
    for given, surname, zone, title, dept in PEOPLE:
        local = f"{given}.{surname}".lower()
        users.append(
            d.add_user(
                contoso.id,
                f"{local}@contoso.example",
                f"{given} {surname}",
                given_name=given,
                surname=surname,
                job_title=title,
                department=dept,
                office_location=rng.choice(["Redmond", "New York", "London", "Munich", "Bangalore", "Tokyo"]),
                time_zone=zone,
                proxy_addresses=[
                    f"SMTP:{local}@contoso.example",
                    f"smtp:{local}@contoso.onmicrosoft.example",
                ],
                business_phones=[f"+1 425 555 {rng.randint(1000, 9999)}"],
            )
        )
    # Mail and proxy addresses that differ from the UPN (renamed and aliased people).
    # (through update_user, which keeps the directory's address index right)
    d.update_user(
        users[3],
        {
            "mail": "bianca.rossi@contoso.example",
            "proxy_addresses": [
                "SMTP:bianca.rossi@contoso.example",
                "smtp:bianca.pisani@contoso.example",
                "smtp:bpisani@contoso.onmicrosoft.example",
            ],
        },
    )
    d.update_user(
        users[10],
        {
            "mail": "emily.b@contoso.example",
            "proxy_addresses": ["SMTP:emily.b@contoso.example", "smtp:ebraun@contoso.example"],
        },
    )
    d.update_user(users[19], {"proxy_addresses": [*users[19].proxy_addresses, "smtp:jordan@contoso.example"]})
    d.update_user(users[27], {"proxy_addresses": [*users[27].proxy_addresses, "smtp:ceo@contoso.example"]})
    # One part-time week: Debra Berger works Monday to Thursday, 07:30-15:30 (everyone else the default
    # Monday to Friday, 08:00-17:00 in their mailbox zone).
    users[7].working_hours_set = WorkingHours(
        ("monday", "tuesday", "wednesday", "thursday"), time(7, 30), time(15, 30), users[7].time_zone
    )
    d.add_user(
        contoso.id,
        "former.employee@contoso.example",
        "Former Employee",
        account_enabled=False,
        time_zone="Pacific Standard Time",
        job_title="Sales Representative",
        proxy_addresses=["SMTP:former.employee@contoso.example"],
    )
    d.add_user(
        contoso.id,
        "it.admin@contoso.example",
        "IT Admin (no mailbox)",
        mail=None,
        mailbox_enabled=False,
        time_zone="UTC",
        job_title="Administrator",
    )
    events = seed_calendars(emu, users, rng)
    for user in users[:6]:
        lst = emu.todo.list_by_name(user, "Tasks")
        for title in ("Prepare the quarterly report", "Call back Litware about the renewal"):
            emu.todo.create_task(user, lst, {"title": title, "importance": rng.choice(["normal", "high"])})

    fabrikam = d.add_tenant("Fabrikam", ["fabrikam.example"], tenant_id=ident.fabrikam_tenant_id)
    fab_users = [
        d.add_user(
            fabrikam.id, f"{g.lower()}@fabrikam.example", f"{g} {s}", given_name=g, surname=s, time_zone=z
        )
        for g, s, z in (
            ("Kim", "Akers", "Eastern Standard Time"),
            ("Ben", "Walters", "GMT Standard Time"),
            ("Mona", "Kane", "Pacific Standard Time"),
        )
    ]
    for user in fab_users:
        emu.todo.list_by_name(user, "Tasks")
    fab_app = d.add_app(
        "Fabrikam Calendar Sync (customer-owned)",
        fabrikam.id,
        client_id=ident.fabrikam_client_id,
        permissions=list(GRAPH_PERMISSIONS),
    )
    d.add_secret(
        fab_app.client_id,
        value=ident.fabrikam_client_secret,
        end=emu.clock.now() + timedelta(days=60),
        display_name="customer secret",
    )
    d.grant(fab_app.client_id, fabrikam.id)

    emu.seed_name = "demo"
    emu.reseed = lambda e: seed_demo(e, ident)
    log.info("demo seed: %d Contoso users, %d events", len(users) + 2, events)
    return {
        "tenant_id": contoso.id,
        "client_id": connector.client_id,
        "client_secret": ident.client_secret,
        "platform_tenant_id": vendor.id,
        "platform_client_id": platform.client_id,
        "platform_client_secret": ident.platform_client_secret,
        "vendor_tenant_id": vendor.id,
        "contoso_domain": "contoso.example",
        "fabrikam_tenant_id": fabrikam.id,
        "fabrikam_client_id": fab_app.client_id,
        "fabrikam_client_secret": ident.fabrikam_client_secret,
        "disabled_user": "former.employee@contoso.example",
        "no_mailbox_user": "it.admin@contoso.example",
    }


# --- bulk (benchmarks) ----------------------------------------------------------------------------


def bulk_events(rng: random.Random, zone: str, today: date, count: int) -> list[dict[str, Any]]:
    monday = _monday(today)
    out: list[dict[str, Any]] = []
    for i in range(count):
        day = monday + timedelta(days=rng.randint(-30, 180))
        if i % 10 == 0:
            out.append(
                _event(
                    f"Weekly meeting {i}",
                    day,
                    time(10),
                    60,
                    zone,
                    recurrence={
                        "pattern": {
                            "type": "weekly",
                            "interval": 1,
                            "daysOfWeek": ["monday"],
                            "firstDayOfWeek": "sunday",
                        },
                        "range": {
                            "type": "numbered",
                            "startDate": day.isoformat(),
                            "numberOfOccurrences": 10,
                        },
                    },
                )
            )
        elif i % 17 == 0:
            out.append(_all_day(f"All-day {i}", day, 1, zone))
        else:
            out.append(_event(f"Appointment {i}", day, time(rng.randint(8, 17)), 30, zone))
    return out


def bulk_tasks(rng: random.Random, today: date, count: int, *, linked_every: int = 4) -> list[dict[str, Any]]:
    """To Do tasks as staff keep them: due dates, a few completed, every `linked_every`th one linked to a
    host task (the connector's linkedResource, as its write side leaves it)."""
    out: list[dict[str, Any]] = []
    for i in range(count):
        task: dict[str, Any] = {"title": f"Task {i}", "importance": rng.choice(("low", "normal", "high"))}
        if i % 3 == 0:
            due = today + timedelta(days=rng.randint(-10, 60))
            task["dueDateTime"] = {"dateTime": f"{due.isoformat()}T00:00:00", "timeZone": "UTC"}
        if i % 5 == 4:
            task["status"] = "completed"
        if linked_every and i % linked_every == 0:
            task["linkedResources"] = [
                {"applicationName": BULK_TASK_APPLICATION, "displayName": f"Job {i}", "externalId": f"T-{i}"}
            ]
        out.append(task)
    return out


BULK_TASK_APPLICATION = "Host tasks (M365 connector)"  # the connector's linkedResource applicationName
BULK_TASK_LIST = "Tasks from the host"  # the connector's default To Do list name


def seed_bulk(
    emu: Emulator,
    users: int,
    events_per_user: int,
    *,
    tasks_per_user: int = 0,
    tenant_id: str | None = None,
) -> dict[str, Any]:
    """N users (all with mailboxes) x M events each (and T tasks in the connector's To Do list), in one
    tenant; for benchmarks."""
    rng = random.Random(7)  # noqa: S311 - synthetic data
    d = emu.directory
    tenant = d.tenant(tenant_id) if tenant_id else None
    if tenant is None:
        tenant = d.add_tenant("Bulk", [f"bulk{rng.randint(0, 10**6)}.example"], tenant_id=tenant_id)
    zones = list(ZONES)
    domain = tenant.domains[0]
    today = emu.clock.now().date()
    seeded = tasks = 0
    for i in range(users):
        user = d.add_user(
            tenant.id, f"user{i:05d}@{domain}", f"User {i:05d}", time_zone=zones[i % len(zones)]
        )
        if events_per_user and emu.mailboxes.available:
            store = emu.mailboxes.store(user)
            for payload in bulk_events(rng, user.time_zone, today, events_per_user):
                store.seed_event(payload)
                seeded += 1
        if tasks_per_user:
            task_list = emu.todo.list_by_name(user, BULK_TASK_LIST)
            for spec in bulk_tasks(rng, today, tasks_per_user):
                emu.todo.create_task(user, task_list, spec)
                tasks += 1
    return {"tenant_id": tenant.id, "users": users, "events": seeded, "tasks": tasks}
