"""Consent revoked in the customer's tenant: recorded once, on the feed once, and then the work stops."""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest
from azure.storage.queue import QueueServiceClient

from tests.e2e.test_console import connected_organisation
from tests.e2e.test_tenants import wait_for
from tests.fixtures.connector import Connector

pytestmark = pytest.mark.e2e

QUIET_SECONDS = 8.0  # longer than host.json's visibilityTimeout (5 s) plus its polling interval (2 s)


async def emulator_counts(connector: Connector) -> tuple[int, int]:
    async with connector.control() as control:
        stats = await control.stats()
    return int(stats["tokens_issued"]), int(stats["requests_total"])


async def settled(connector: Connector, quiet: float = 2.0, timeout: float = 60.0) -> tuple[int, int]:
    """The emulator's counts once nothing has called it for `quiet` seconds (earlier work has drained)."""
    deadline = time.monotonic() + timeout
    last = await emulator_counts(connector)
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = await emulator_counts(connector)
        if now == last:
            return now
        last = now
    raise AssertionError(f"the emulator never went quiet: {last}")


def poisoned(connector: Connector, tenant_id: str) -> list[str]:
    service = QueueServiceClient.from_connection_string(connector.settings["AzureWebJobsStorage"])
    found: list[str] = []
    for queue in service.list_queues():
        if not queue.name.endswith("-poison"):
            continue
        for message in service.get_queue_client(queue.name).peek_messages(max_messages=32):
            body = base64.b64decode(message.content).decode(errors="replace")
            if tenant_id in body:
                found.append(f"{queue.name}: {body}")
    return found


def tenant(connector: Connector, tid: str) -> dict[str, Any]:
    with connector.api() as api:
        body: dict[str, Any] = api.get(f"/api/v1/tenants/{tid}").json()
    return body


@pytest.mark.parametrize("mode", ["grants", "service_principal"])
async def test_revoked_consent_is_recorded_once_and_the_jobs_stop(connector: Connector, mode: str) -> None:
    org = await connected_organisation(connector)
    tid = org["domain"]
    wait_for(lambda: tenant(connector, tid)["progress"]["phase"] == "done", timeout=60)
    await settled(connector)

    async with connector.control() as control:
        await control.revoke_consent(org["id"], connector.client_id, mode=mode)
    with connector.api() as api:
        assert api.post(f"/api/v1/tenants/{tid}/rematch").status_code == 202
    revoked = wait_for(lambda: (t := tenant(connector, tid))["state"] == "consent_revoked" and t, timeout=60)
    assert revoked["last_error"]
    assert revoked["progress"]["phase"] == "stopped"

    before = await emulator_counts(connector)
    time.sleep(QUIET_SECONDS)
    assert await emulator_counts(connector) == before, "Graph or Entra was called again after the revocation"
    assert poisoned(connector, tid) == []

    with connector.api() as api:
        changes = [c["type"] for c in api.get(f"/api/v1/tenants/{tid}/changes").json()["value"]]
        assert changes.count("tenant.consent_revoked") == 1
        # Nothing more is queued for a revoked tenant; reauthorizing is the way back.
        assert api.post(f"/api/v1/tenants/{tid}/rematch").status_code == 409
        assert api.post(f"/api/v1/tenants/{tid}/resync", json={}).status_code == 409
        again = api.post(f"/api/v1/tenants/{tid}/reauthorize")
        assert again.status_code == 200 and "/adminconsent?" in again.json()["consent_url"]
    assert await emulator_counts(connector) == before
