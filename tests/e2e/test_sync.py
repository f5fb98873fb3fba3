"""Outlook to host end to end: migrate a tenant, change calendars through Graph as a user would, and see
the changes on the pull feed and at the host's webhook (signed). The local host runs the real app against
the emulator (which delivers real change notifications to the webhook) and Azurite."""

from __future__ import annotations

import json
import ssl
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from azure.data.tables import TableServiceClient

from shared.adapters.tables.busy import TableBusy
from shared.adapters.tables.change_feed import CHANGES
from shared.service.busy_index import busy_key
from tests.e2e.test_tenants import consent, create
from tests.e2e.test_tenants import wait_for as wait_briefly
from tests.fixtures.azurite import storage_on
from tests.fixtures.connector import Connector

pytestmark = pytest.mark.e2e


def wait_for(check: Any, timeout: float = 60.0) -> Any:
    """Changes travel Graph -> webhook -> queue -> sync -> feed; allow for a loaded machine."""
    return wait_briefly(check, timeout=timeout)


def at(days: int, hour: int) -> dict[str, str]:
    moment = (datetime.now(UTC) + timedelta(days=days)).replace(hour=hour, minute=0, second=0, microsecond=0)
    return {"dateTime": moment.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}


def graph_event(subject: str, days: int = 1, hour: int = 9, **extra: Any) -> dict[str, Any]:
    return {"subject": subject, "start": at(days, hour), "end": at(days, hour + 1), **extra}


class Outlook:
    """Graph on the emulator, as a user's Outlook would change the mailbox (app credentials)."""

    def __init__(self, connector: Connector, tenant_id: str) -> None:
        trust = ssl.create_default_context(cafile=connector.emulator.ca_file)
        token = httpx.post(
            f"{connector.emulator.authority}/{tenant_id}/oauth2/v2.0/token",
            data={
                "client_id": connector.client_id,
                "client_secret": connector.client_secret,
                "scope": "https://graph.microsoft.com/.default",
                "grant_type": "client_credentials",
            },
            verify=trust,
        ).json()["access_token"]
        # Immutable ids, as the connector asks for them (a REST id is another string for the same item).
        self.http = httpx.Client(
            base_url=connector.emulator.graph,
            verify=trust,
            headers={"Authorization": f"Bearer {token}", "Prefer": 'IdType="ImmutableId"'},
        )

    def create(self, user: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post(f"/users/{user}/events", json=body)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def update(self, user: str, event_id: str, body: dict[str, Any]) -> None:
        assert self.http.patch(f"/users/{user}/events/{event_id}", json=body).status_code == 200

    def delete(self, user: str, event_id: str) -> None:
        assert self.http.delete(f"/users/{user}/events/{event_id}").status_code == 204


async def migrated_organisation(
    connector: Connector, events_per_user: int = 3, domain: str | None = None
) -> dict[str, Any]:
    domain = domain or f"sync{uuid.uuid4().hex[:8]}.example"
    async with connector.control() as control:
        tenant = await control.create_tenant(f"Sync {domain}", [domain], consent_policy="auto-accept")
        tid = tenant["id"]
        people = {}
        for name in ("adele", "ben"):
            people[name] = await control.create_user(tid, f"{name}@{domain}", display_name=name.title())
            await control.seed_events(
                tid,
                f"{name}@{domain}",
                [graph_event(f"{name} seeded {i}", days=i + 1) for i in range(events_per_user)],
            )
    response = create(connector, {"domain": domain})
    assert response.status_code == 201, response.text
    assert consent(connector, response.json()["consent_url"]).status_code == 200
    with connector.api() as api:
        for name in people:
            put = api.put(f"/api/v1/tenants/{domain}/staff/s-{name}", json={"upn": f"{name}@{domain}"})
            assert put.json()["match"] == "matched", put.text

        def active() -> dict[str, Any] | None:
            body = api.get(f"/api/v1/tenants/{domain}").json()
            return body if body["state"] == "active" else None

        tenant_state = wait_for(active, timeout=120)
    return {"id": tid, "domain": domain, "people": people, "tenant": tenant_state}


def feed(connector: Connector, domain: str) -> list[dict[str, Any]]:
    with connector.api() as api:
        return list(api.get(f"/api/v1/tenants/{domain}/changes", params={"limit": 1000}).json()["value"])


def events_of(changes: list[dict[str, Any]], kind: str) -> list[str]:
    return [c["data"]["event"].get("subject", c["data"]["event"]["id"]) for c in changes if c["type"] == kind]


async def test_a_tenant_migrates_to_100_percent_and_every_user_is_subscribed(connector: Connector) -> None:
    org = await migrated_organisation(connector)
    progress = org["tenant"]["progress"]
    assert (progress["percent"], progress["phase"], progress["by_state"]) == (100, "done", {"synced": 2})
    changes = feed(connector, org["domain"])
    assert sorted(events_of(changes, "event.created")) == sorted(
        f"{name} seeded {i}" for name in ("adele", "ben") for i in range(3)
    )
    assert sorted(c["staff_id"] for c in changes if c["type"] == "user.migrated") == ["s-adele", "s-ben"]
    async with connector.control() as control:
        held = [s for s in await control.subscriptions() if s["tenantId"] == org["id"]]
    subscriptions = [s for s in held if s["resource"].endswith("/events")]  # and one on each To Do list
    assert sorted(s["resource"].split("/")[1] for s in subscriptions) == sorted(
        p["id"] for p in org["people"].values()
    )
    with connector.api() as api:
        users = api.get(f"/api/v1/tenants/{org['domain']}/users").json()["value"]
    assert all(u["state"] == "synced" and u["subscription_expires_at"] and u["last_sync_at"] for u in users)


async def busy_span(connector: Connector, azurite: Any, domain: str, graph_id: str) -> tuple[str, str] | None:
    """The instance of an Outlook item in the user's busy index, as the connector stored it in Azurite."""
    storage = storage_on(azurite, connector.settings["TABLE_PREFIX"])
    try:
        index = (await TableBusy(storage).read(domain, "s-adele")).index
    finally:
        await storage.close()
    assert index is not None and index.complete
    found = [i for i in index.instances if i.key == busy_key(graph_id)]
    return (found[0].start.isoformat(), found[0].end.isoformat()) if found else None


def utc(moment: dict[str, str]) -> str:
    return f"{moment['dateTime']}+00:00"


async def test_outlook_changes_reach_the_feed_and_the_host_webhook_signed(
    connector: Connector, azurite: Any
) -> None:
    org = await migrated_organisation(connector, events_per_user=1)
    domain, adele = org["domain"], f"adele@{org['domain']}"
    outlook = Outlook(connector, org["id"])
    made = outlook.create(adele, graph_event("Dentist", days=2, hour=14))
    wait_for(lambda: "Dentist" in events_of(feed(connector, domain), "event.created"))
    # The busy index is written before the feed: once the feed has a change, the index has it too.
    assert await busy_span(connector, azurite, domain, made["id"]) == (utc(at(2, 14)), utc(at(2, 15)))
    outlook.update(adele, made["id"], {"subject": "Dentist (moved)", "start": at(3, 15), "end": at(3, 16)})
    wait_for(lambda: "Dentist (moved)" in events_of(feed(connector, domain), "event.updated"))
    assert await busy_span(connector, azurite, domain, made["id"]) == (utc(at(3, 15)), utc(at(3, 16)))
    outlook.delete(adele, made["id"])
    wait_for(lambda: made["id"] in events_of(feed(connector, domain), "event.deleted"))
    assert await busy_span(connector, azurite, domain, made["id"]) is None
    changes = feed(connector, domain)
    created = next(
        c for c in changes if c["type"] == "event.created" and c["data"]["event"]["subject"] == "Dentist"
    )
    assert created["staff_id"] == "s-adele"
    assert created["data"]["event"]["start"].endswith("Z")
    delivered = wait_for(
        lambda: (
            [c for c in connector.receiver.changes(domain) if c["type"].startswith("event.")]
            if len(connector.receiver.changes(domain)) >= len(changes)
            else None
        )
    )
    assert {c["sequence"] for c in connector.receiver.changes(domain)} == {c["sequence"] for c in changes}
    # Posts may overlap (one per delivery job, several workers): a host orders what it got by sequence.
    in_order = sorted(delivered, key=lambda c: int(c["sequence"]))
    assert [c["type"] for c in in_order][-3:] == ["event.created", "event.updated", "event.deleted"]


async def test_an_expired_delta_link_is_recovered_without_duplicates(connector: Connector) -> None:
    org = await migrated_organisation(connector, events_per_user=2)
    domain, ben = org["domain"], f"ben@{org['domain']}"
    async with connector.control() as control:
        await control.expire_delta_tokens(tenant_id=org["id"], user=ben)
    Outlook(connector, org["id"]).create(ben, graph_event("After expiry", days=4))
    wait_for(lambda: "After expiry" in events_of(feed(connector, domain), "event.created"))
    created = events_of(feed(connector, domain), "event.created")
    assert len(created) == len(set(created))  # nothing announced twice


async def test_lifecycle_events_are_handled(connector: Connector) -> None:
    org = await migrated_organisation(connector, events_per_user=1)
    domain = org["domain"]
    async with connector.control() as control:
        [subscription] = [
            s
            for s in await control.subscriptions()
            if s["resource"].endswith(f"{org['people']['adele']['id']}/events")
        ]
        await control.remove_subscription(subscription["id"])  # Graph removed it: lifecycle says so

        async def recreated() -> bool:
            mine = [
                s
                for s in await control.subscriptions()
                if s["tenantId"] == org["id"] and s["resource"].endswith("/events")
            ]
            return len(mine) == 2 and subscription["id"] not in {s["id"] for s in mine}

        for _ in range(100):
            if await recreated():
                break
            import asyncio

            await asyncio.sleep(0.2)
        assert await recreated()
    Outlook(connector, org["id"]).create(f"adele@{domain}", graph_event("Seen by the new subscription"))
    wait_for(lambda: "Seen by the new subscription" in events_of(feed(connector, domain), "event.created"))


def test_the_webhook_answers_the_handshake_and_refuses_bad_input(connector: Connector) -> None:
    with httpx.Client(base_url=connector.url, timeout=10) as http:
        ok = http.post("/api/graph/notifications", params={"validationToken": "Validation: token 1"})
        assert (ok.status_code, ok.text, ok.headers["content-type"].split(";")[0]) == (
            200,
            "Validation: token 1",
            "text/plain",
        )
        too_long = http.post("/api/graph/notifications", params={"validationToken": "x" * 5000})
        assert too_long.status_code == 400
        malformed = http.post("/api/graph/notifications", content=b"{not json")
        assert malformed.status_code == 400 and malformed.json()["error"]["field"] == "body"
        forged = {
            "value": [
                {
                    "subscriptionId": "s",
                    "tenantId": str(uuid.uuid4()),
                    "clientState": "v1.forged",
                    "resource": "Users/u/Events/e",
                    "changeType": "created",
                }
            ]
        }
        assert http.post("/api/graph/notifications", json=forged).status_code == 202
        assert (
            http.post("/api/graph/lifecycle", json={"value": [{"lifecycleEvent": "missed"}]}).status_code
            == 202
        )


async def test_throttling_and_unavailability_end_converged(connector: Connector) -> None:
    org = await migrated_organisation(connector, events_per_user=1)
    domain, adele = org["domain"], f"adele@{org['domain']}"
    async with connector.control() as control:
        # More 429s than the SDK retries, then 503s: the job is re-queued after Retry-After and converges.
        await control.add_fault(status=429, retry_after=1, path="/calendarView/delta", mailbox=adele, count=4)
        await control.add_fault(status=503, path="/calendarView/delta", mailbox=adele, count=3)
    Outlook(connector, org["id"]).create(adele, graph_event("Despite throttling", days=5))
    wait_for(lambda: "Despite throttling" in events_of(feed(connector, domain), "event.created"), timeout=60)
    with connector.api() as api:
        users = {u["staff_id"]: u for u in api.get(f"/api/v1/tenants/{domain}/users").json()["value"]}
    assert users["s-adele"]["state"] == "synced" and users["s-adele"]["last_error"] is None
    assert events_of(feed(connector, domain), "event.created").count("Despite throttling") == 1


async def test_disconnect_leaves_no_subscription_behind(connector: Connector) -> None:
    org = await migrated_organisation(connector, events_per_user=1)
    with connector.api() as api:
        assert api.delete(f"/api/v1/tenants/{org['domain']}").status_code == 202
        wait_for(lambda: api.get(f"/api/v1/tenants/{org['domain']}").json()["state"] == "disconnected")
    async with connector.control() as control:
        assert [s for s in await control.subscriptions() if s["tenantId"] == org["id"]] == []


def tenant_rows(connector: Connector, domain: str) -> dict[str, list[dict[str, Any]]]:
    """Per table of this connector, the feed included, the rows that mention the tenant in a key or a
    value."""
    service = TableServiceClient.from_connection_string(connector.settings["AzureWebJobsStorage"])
    prefix = connector.settings["TABLE_PREFIX"].lower()
    found: dict[str, list[dict[str, Any]]] = {}
    for table in service.list_tables():
        name = table.name.lower()
        if name.startswith(prefix):
            entities = service.get_table_client(table.name).list_entities()
            found[name[len(prefix) :]] = [dict(e) for e in entities if domain in json.dumps(e, default=str)]
    return found


async def test_a_disconnect_leaves_nothing_of_the_tenant_table_by_table_feed_included(
    connector: Connector,
) -> None:
    org = await migrated_organisation(connector, events_per_user=2)
    domain = org["domain"]
    Outlook(connector, org["id"]).create(org["people"]["adele"]["id"], graph_event("Before the disconnect"))
    wait_for(lambda: "Before the disconnect" in events_of(feed(connector, domain), "event.created"))
    before = tenant_rows(connector, domain)
    assert {t for t, rows in before.items() if rows} >= {"users", "subscriptions", "outlookitems", "changes"}

    with connector.api() as api:
        assert api.delete(f"/api/v1/tenants/{domain}").status_code == 202
        wait_for(lambda: api.get(f"/api/v1/tenants/{domain}").json()["state"] == "disconnected")
        gone = api.get(f"/api/v1/tenants/{domain}/changes", params={"cursor": 0})
        assert gone.status_code == 410 and gone.json()["error"]["field"] == "cursor"

    left = {t: rows for t, rows in tenant_rows(connector, domain).items() if rows}
    assert set(left) <= {"tenants", "changes"}, {t: len(rows) for t, rows in left.items()}
    assert [r["State"] for r in left.get("tenants", [])] == ["disconnected"]  # the row, no claim, no links
    # The feed keeps its numbering (head and a floor row) and `tenant.disconnected` alone: no subject, body
    # or attendee of the tenant's calendars is left.
    feed_text = json.dumps(left["changes"], default=str)
    assert "Before the disconnect" not in feed_text and "seeded" not in feed_text
    async with connector.control() as control:
        assert [s for s in await control.subscriptions() if s["tenantId"] == org["id"]] == []


async def test_the_apps_log_lines_carry_tenant_user_and_invocation(connector: Connector) -> None:
    org = await migrated_organisation(connector, events_per_user=1)

    def sync_lines() -> list[str]:  # the tenant turns active a moment before the run logs its summary
        lines = [line for line in connector.host.log().splitlines() if " connector.sync synced" in line]
        return [line for line in lines if f"tenant={org['domain']}" in line]

    mine = wait_for(sync_lines, timeout=10)
    assert all(" user=s-" in line and " invocation_id=" in line for line in mine)


def rows_of(connector: Connector, domain: str, *mentions: str) -> dict[str, int]:
    """Per table of this connector (the feed aside: it is the host's record of what happened), how many
    rows of the tenant mention any of `mentions` (a staff id, a Graph user id), in a key or a value."""
    service = TableServiceClient.from_connection_string(connector.settings["AzureWebJobsStorage"])
    prefix = connector.settings["TABLE_PREFIX"].lower()
    counts: dict[str, int] = {}
    for table in service.list_tables():
        name = table.name.lower()
        if not name.startswith(prefix) or name == f"{prefix}{CHANGES}":
            continue
        texts = [json.dumps(e, default=str) for e in service.get_table_client(table.name).list_entities()]
        counts[name[len(prefix) :]] = sum(
            1 for t in texts if domain in t and any(m.lower() in t.lower() for m in mentions)
        )
    return counts


async def test_a_staff_deletion_leaves_nothing_of_the_user_table_by_table(connector: Connector) -> None:
    org = await migrated_organisation(connector, events_per_user=2)
    domain, adele, ben = org["domain"], org["people"]["adele"]["id"], org["people"]["ben"]["id"]

    async def subscribed(graph_user_id: str) -> list[str]:
        async with connector.control() as control:
            return [
                s["id"]
                for s in await control.subscriptions()
                if s["tenantId"] == org["id"] and s["resource"].split("/")[1] == graph_user_id
            ]

    before = rows_of(connector, domain, "s-adele", adele)
    assert {t for t, n in before.items() if n} >= {"users", "subscriptions", "outlookitems", "busy"}
    assert await subscribed(adele) != []
    ben_before = rows_of(connector, domain, "s-ben", ben)
    with connector.api() as api:
        assert api.delete(f"/api/v1/tenants/{domain}/staff/s-adele").status_code == 204
        listed = api.get(f"/api/v1/tenants/{domain}/users").json()["value"]
        assert [u["staff_id"] for u in listed] == ["s-ben"]
    wait_for(lambda: not any(rows_of(connector, domain, "s-adele", adele).values()), timeout=60)
    assert await subscribed(adele) == []
    outlook = Outlook(connector, org["id"])
    outlook.create(adele, graph_event("After the deletion"))  # Graph has no subscription to notify
    outlook.create(ben, graph_event("Ben goes on"))
    wait_for(lambda: "Ben goes on" in events_of(feed(connector, domain), "event.created"))
    assert "After the deletion" not in events_of(feed(connector, domain), "event.created")
    assert not any(rows_of(connector, domain, "s-adele", adele).values())
    assert await subscribed(ben) != []
    ben_after = rows_of(connector, domain, "s-ben", ben)
    assert {t for t, n in ben_after.items() if n} == {t for t, n in ben_before.items() if n}
