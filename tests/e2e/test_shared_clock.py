"""One clock for the local stack, moved end to end: the emulator and the connector on the local host share
it (the emulator's clock file, `LOCAL_CLOCK_FILE`), so days pass for Graph, for the connector and for
the host's timers at once. Subscriptions are renewed before they expire; ones that expired, or that Graph
lost without telling anyone, are recreated and caught up through delta, and an Outlook change made
meanwhile reaches the feed. Consent links and customer secrets age by the same clock, and an open-ended
Outlook series is announced once across the sync window's move. The emulator and the connector here are
their own (the session's shared emulator keeps real time for every other test)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from devhost.azurite import Azurite
from m365emulator.odata import parse_datetime
from m365emulator.process import EmulatorProcess
from shared.service.subscriptions import LIFETIME
from tests.e2e.test_outlook_series import master_of, organisation, series_body
from tests.e2e.test_sync import Outlook, events_of, feed, graph_event, migrated_organisation, wait_for
from tests.e2e.test_tenants import consent, create, new_organisation
from tests.fixtures.connector import Connector, running_connector
from tests.fixtures.emulator import info_from

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def clocked(tmp_path_factory: pytest.TempPathFactory, local_host_factory: Any) -> Iterator[Connector]:
    workdir = tmp_path_factory.mktemp("clocked-emulator")
    clock_file = workdir / "clock"
    process = EmulatorProcess(workdir, extra_args=["--clock-file", str(clock_file)])
    ready = process.start()
    try:
        emulator = info_from(ready, process.log_file)
        # Storage of its own too: queue names are fixed, so a host of another module on the session's
        # Azurite would take this host's jobs (and drop them, its tables knowing no such tenant).
        # The timers keep their once-a-year schedule (1 January) and run when a test says, as a host runs
        # a timer on demand; that a jump of the shared clock fires a due timer is the host's own test.
        with (
            Azurite() as storage,
            running_connector(
                emulator, storage, local_host_factory, LOCAL_CLOCK_FILE=str(Path(ready["clock_file"]))
            ) as connector,
        ):
            yield connector
    finally:
        process.stop()


async def emulator_now(connector: Connector) -> datetime:
    async with connector.control() as control:
        return parse_datetime(await control.clock())


async def subscriptions_of(connector: Connector, tenant_id: str) -> dict[str, dict[str, Any]]:
    """The tenant's subscriptions on users' events Graph holds, by user id."""
    async with connector.control() as control:
        held = [
            s
            for s in await control.subscriptions()
            if s["tenantId"] == tenant_id and s["resource"].endswith("/events")
        ]
    return {s["userId"]: s for s in held}


def users_of(connector: Connector, domain: str) -> dict[str, dict[str, Any]]:
    with connector.api() as api:
        return {u["staff_id"]: u for u in api.get(f"/api/v1/tenants/{domain}/users").json()["value"]}


async def wait_async(check: Any, timeout: float = 90.0) -> Any:
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.3)


async def test_subscriptions_are_renewed_before_expiry_an_hour_before_it(clocked: Connector) -> None:
    org = await migrated_organisation(clocked, events_per_user=1)
    before = await subscriptions_of(clocked, org["id"])
    assert len(before) == 2
    async with clocked.control() as control:
        await control.advance_clock(seconds=(LIFETIME - timedelta(hours=1)).total_seconds())  # an hour left
    now = await emulator_now(clocked)
    assert clocked.host.run_function("renew_subscriptions").status_code == 202

    async def renewed() -> bool:
        held = await subscriptions_of(clocked, org["id"])
        return held.keys() == before.keys() and all(
            s["id"] == before[u]["id"]
            and parse_datetime(s["expirationDateTime"]) > now + LIFETIME - timedelta(hours=1)
            for u, s in held.items()
        )

    await wait_async(renewed)  # the same subscriptions, alive for another `LIFETIME`, none recreated
    users = users_of(clocked, org["domain"])
    assert all(
        parse_datetime(u["subscription_expires_at"]) > now + LIFETIME - timedelta(hours=1)
        for u in users.values()
    )
    adele = f"adele@{org['domain']}"
    Outlook(clocked, org["id"]).create(adele, graph_event("After the renewal", days=2))
    wait_for(lambda: "After the renewal" in events_of(feed(clocked, org["domain"]), "event.created"))


async def test_expired_subscriptions_are_recreated_and_caught_up(clocked: Connector) -> None:
    org = await migrated_organisation(clocked, events_per_user=1)
    before = await subscriptions_of(clocked, org["id"])
    adele = f"adele@{org['domain']}"
    async with clocked.control() as control:
        await control.advance_clock(
            seconds=(LIFETIME + timedelta(hours=2)).total_seconds()
        )  # Graph deleted both
    assert await subscriptions_of(clocked, org["id"]) == {}
    Outlook(clocked, org["id"]).create(adele, graph_event("While nobody listened", days=3))  # nobody is told
    now = await emulator_now(clocked)
    assert clocked.host.run_function("renew_subscriptions").status_code == 202

    async def recreated() -> bool:
        held = await subscriptions_of(clocked, org["id"])
        return held.keys() == before.keys() and all(
            s["id"] != before[u]["id"]
            and parse_datetime(s["expirationDateTime"]) > now + LIFETIME - timedelta(hours=1)
            for u, s in held.items()
        )

    await wait_async(recreated)
    wait_for(lambda: "While nobody listened" in events_of(feed(clocked, org["domain"]), "event.created"))
    assert all(u["state"] == "synced" for u in users_of(clocked, org["domain"]).values())


async def test_a_subscription_lost_silently_is_recreated_by_a_resync(clocked: Connector) -> None:
    org = await migrated_organisation(clocked, events_per_user=1)
    before = await subscriptions_of(clocked, org["id"])
    ben_id = org["people"]["ben"]["id"]
    async with clocked.control() as control:
        await control.remove_subscription(before[ben_id]["id"], lifecycle=False)
    ben = f"ben@{org['domain']}"
    Outlook(clocked, org["id"]).create(ben, graph_event("Lost in the silence", days=2))
    with clocked.api() as api:
        assert api.post(f"/api/v1/tenants/{org['domain']}/users/s-ben/resync", json={}).status_code == 202

    async def recreated() -> bool:
        held = await subscriptions_of(clocked, org["id"])
        return ben_id in held and held[ben_id]["id"] != before[ben_id]["id"]

    await wait_async(recreated)
    wait_for(lambda: "Lost in the silence" in events_of(feed(clocked, org["domain"]), "event.created"))
    Outlook(clocked, org["id"]).create(ben, graph_event("Heard again", days=4))
    wait_for(lambda: "Heard again" in events_of(feed(clocked, org["domain"]), "event.created"))


async def test_a_consent_link_expires_an_hour_later_by_the_shared_clock(clocked: Connector) -> None:
    org = await new_organisation(clocked)
    tenant = create(clocked, org).json()
    async with clocked.control() as control:
        await control.advance_clock(minutes=61)
    page = consent(clocked, tenant["consent_url"])
    assert "The consent link expired" in page.text
    with clocked.api() as api:
        assert api.get(f"/api/v1/tenants/{org['domain']}").json()["state"] == "pending_consent"


async def test_the_nightly_run_warns_of_a_customer_secret_that_lapses_within_30_days(
    clocked: Connector,
) -> None:
    org = await new_organisation(clocked)
    lapses = (await emulator_now(clocked)) + timedelta(days=40)
    async with clocked.control() as control:
        app = await control.create_app(
            "Customer's own app",
            org["id"],
            permissions=["Calendars.ReadWrite", "User.Read.All"],
            secrets=[{"value": "customer-secret-value-1", "end_date_time": lapses.isoformat()}],
            consent=True,
        )
    auth = {
        "mode": "customer_app",
        "client_id": app["client_id"],
        "client_secret": "customer-secret-value-1",
        "client_secret_expires_at": lapses.isoformat().replace("+00:00", "Z"),
    }
    with clocked.api() as api:
        created = api.post(
            "/api/v1/tenants", json={"tenant_id": org["id"], "display_name": "Org", "auth": auth}
        )
        assert created.status_code == 201, created.text

    def warnings() -> list[dict[str, Any]]:
        with clocked.api() as api:
            changes = api.get(f"/api/v1/tenants/{org['id']}/changes", params={"limit": 1000}).json()["value"]
        return [c for c in changes if c["type"] == "tenant.credential_expiring"]

    assert clocked.host.run_function("nightly_resync").status_code == 202
    time.sleep(3)
    assert warnings() == []  # 40 days left
    async with clocked.control() as control:
        await control.advance_clock(days=11)  # 29 days left
    assert clocked.host.run_function("nightly_resync").status_code == 202
    warned = wait_for(warnings)
    assert len(warned) == 1 and warned[0]["data"]["expired"] is False


async def test_the_message_monitor_is_pruned_by_age(clocked: Connector) -> None:
    org = await migrated_organisation(clocked, events_per_user=1)
    path = f"/api/v1/tenants/{org['domain']}/messages"
    since = (await emulator_now(clocked) - timedelta(days=60)).isoformat()

    def listed() -> list[dict[str, Any]]:
        with clocked.api() as api:
            answer = api.get(path, params={"since": since, "limit": 500})
        assert answer.status_code == 200, answer.text
        found: list[dict[str, Any]] = answer.json()["value"]
        return found

    migrations = wait_for(lambda: [m for m in listed() if m["kind"] == "migrate"])
    assert {m["staff_id"] for m in migrations} == {"s-adele", "s-ben"}
    async with clocked.control() as control:
        await control.advance_clock(days=15)  # past the default 14 days' retention
    assert clocked.host.run_function("prune_messages").status_code == 202
    old = {m["monitor_id"] for m in migrations}
    wait_for(lambda: not old & {m["monitor_id"] for m in listed()})


async def test_an_open_ended_daily_series_across_a_window_move_is_announced_once(clocked: Connector) -> None:
    org = await organisation(clocked, ("adele",))
    outlook = Outlook(clocked, org["id"])
    adele = org["upn"]["adele"]
    first = datetime.now(UTC).date() + timedelta(days=1)
    daily = {
        "pattern": {"type": "daily", "interval": 1},
        "range": {"type": "noEnd", "startDate": first.isoformat()},
    }
    master = outlook.create(adele, series_body("Stand-up", first, 9, daily))
    wait_for(lambda: master_of(feed(clocked, org["domain"]), "s-adele", "Stand-up"))
    with clocked.api() as api:

        def adele_user() -> dict[str, Any]:
            listed = api.get(f"/api/v1/tenants/{org['domain']}/users").json()["value"]
            return next(u for u in listed if u["staff_id"] == "s-adele")

        before = adele_user()["last_sync_at"]
        async with clocked.control() as control:
            await control.advance_clock(hours=24 * 5)  # the window's edge moves five days on
        resync = api.post(f"/api/v1/tenants/{org['domain']}/users/s-adele/resync")
        assert resync.status_code == 202, resync.text

        def resynced() -> bool:
            user = adele_user()
            return bool(user["last_sync_at"] and user["last_sync_at"] > before and user["state"] == "synced")

        wait_for(resynced)
    changes = [c for c in feed(clocked, org["domain"]) if c["type"].startswith("event.")]
    about_series = [
        c
        for c in changes
        if master["id"] in (c["data"]["event"]["id"], c["data"]["event"].get("series_master_id"))
    ]
    assert [c["type"] for c in about_series] == ["event.created"]  # nothing announced twice, no occurrence
