"""Host to Outlook end to end: appointments PUT through the host API reach the staff calendars on the
emulator (read back through Graph as Outlook shows them), never come back to the host as Outlook changes,
and report their outcome on the feed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.e2e.test_sync import Outlook, feed, migrated_organisation, wait_for
from tests.fixtures.connector import Connector

pytestmark = pytest.mark.e2e


def local(days: int, hour: int) -> str:
    moment = (datetime.now(UTC) + timedelta(days=days)).replace(hour=hour, minute=0, second=0, microsecond=0)
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def appointment(subject: str, staff: list[str], days: int = 2, hour: int = 10, **extra: Any) -> dict[str, Any]:
    return {
        "subject": subject,
        "start": local(days, hour),
        "end": local(days, hour + 1),
        "time_zone": "Europe/Amsterdam",
        "staff_ids": staff,
        **extra,
    }


def put(connector: Connector, domain: str, appointment_id: str, body: dict[str, Any], **headers: str) -> Any:
    with connector.api() as api:
        return api.put(f"/api/v1/tenants/{domain}/appointments/{appointment_id}", json=body, headers=headers)


def state(connector: Connector, domain: str, appointment_id: str) -> dict[str, Any]:
    with connector.api() as api:
        return dict(api.get(f"/api/v1/tenants/{domain}/appointments/{appointment_id}").json())


def settled(connector: Connector, domain: str, appointment_id: str, revision: int) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        body = state(connector, domain, appointment_id)
        done = body["revision"] >= revision and body["state"] not in ("pending", "deleting")
        return body if done else None

    return dict(wait_for(check))


def calendar(outlook: Outlook, user: str) -> list[dict[str, Any]]:
    start = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    end = (datetime.now(UTC) + timedelta(days=60)).strftime("%Y-%m-%dT%H:%M:%SZ")
    response = outlook.http.get(
        f"/users/{user}/calendarView",
        params={"startDateTime": start, "endDateTime": end, "$top": "1000"},
        headers={"Prefer": 'outlook.timezone="Europe/Amsterdam"'},
    )
    assert response.status_code == 200, response.text
    return list(response.json()["value"])


async def test_an_appointment_reaches_each_staff_calendar_once_and_is_never_echoed(connector: Connector) -> None:
    org = await migrated_organisation(connector, events_per_user=0)
    domain = org["domain"]
    outlook = Outlook(connector, org["id"])
    answer = put(connector, domain, "a-1", appointment("Intake", ["s-adele", "s-ben"]))
    assert answer.status_code == 202, answer.text
    assert answer.headers["ETag"] == '"1"'
    body = settled(connector, domain, "a-1", 1)
    assert body["state"] == "synced", body
    for name in ("adele", "ben"):
        events = [e for e in calendar(outlook, f"{name}@{domain}") if e["subject"] == "Intake"]
        assert len(events) == 1
        assert events[0]["start"]["dateTime"].startswith(local(2, 10))
        assert events[0]["attendees"] == []
    wait_for(lambda: any(c["type"] == "appointment.synced" for c in feed(connector, domain)))
    changes = feed(connector, domain)
    assert not [c for c in changes if c["type"].startswith("event.")], changes
