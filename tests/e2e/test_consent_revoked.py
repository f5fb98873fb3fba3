"""Consent revoked in the customer's tenant: recorded once, on the feed once, and then the work stops.

An app-only token carries its roles until it expires (an hour), in Entra as in the emulator, so a worker
that still holds one for the tenant goes on working until then. These tests run their own connector host
and restart it after the revocation (as a recycled worker, or the token's hour, would), so that the next
job asks Entra for a new token and meets the revocation at once. The session's connector is not touched:
the host here has its own Azurite too, since the queue names are fixed and two hosts on one storage
account would take each other's jobs.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import functools
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from azure.storage.queue import QueueServiceClient

from devhost.azurite import Azurite
from tests.e2e.test_console import connected_organisation
from tests.e2e.test_tenants import wait_for
from tests.fixtures.connector import ROOT, Connector, _register_app, free_port

pytestmark = pytest.mark.e2e

QUIET_SECONDS = 8.0  # longer than host.json's visibilityTimeout (5 s) plus its polling interval (2 s)


async def tenant_counts(connector: Connector, domain: str) -> tuple[int, int]:
    """Tokens issued (by anyone: tokens are cached, so other hosts rarely ask) and Graph requests on this
    tenant's mailboxes. The emulator is the session's: other hosts' delayed jobs (a lease check-back two
    minutes after an earlier test) may call it for their own tenants meanwhile."""
    async with connector.control() as control:
        stats = await control.stats()
    mailboxes = stats["requests_by_mailbox"]
    return int(stats["tokens_issued"]), sum(n for name, n in mailboxes.items() if name.endswith(f"@{domain}"))


async def drained(connector: Connector, domains: list[str], quiet: float, timeout: float = 120.0) -> None:
    """This host's work for these tenants has drained: no job started and no Graph request on their
    mailboxes for `quiet` seconds. Only these counts: the session's emulator serves other hosts too, whose
    delayed jobs (a lease check-back two minutes after an earlier test) come and go meanwhile."""

    async def counts() -> tuple[int, list[int]]:
        return job_runs(connector), [(await tenant_counts(connector, domain))[1] for domain in domains]

    deadline = time.monotonic() + timeout
    last = await counts()
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = await counts()
        if now == last:
            return
        last = now
    raise AssertionError(f"the tenants' work never drained: {last}")


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


class RestartableConnector:
    """A connector host of this module's own, which can be restarted on the same port and storage."""

    def __init__(self, start: Callable[[], Connector]) -> None:
        self._start = start
        self.current = start()

    def restart(self) -> Connector:
        self.current.host.stop()
        self.current = self._start()
        return self.current


@pytest.fixture(scope="module")
def own_connector(
    connector: Connector, local_host_factory: Callable[..., Any]
) -> Iterator[RestartableConnector]:
    """The session connector's settings, with an app registration, a port and a storage of its own."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    secret, secret_name = secrets.token_urlsafe(30), f"graph-client-secret-{uuid.uuid4().hex[:8]}"
    emulator = connector.emulator

    async def register() -> str:
        async with emulator.control as control:
            client_id = await _register_app(
                control, emulator.platform_tenant_id, f"{base}/api/consent/callback", secret
            )
            await control.set_vault_secret(secret_name, secret)
            return client_id

    client_id = asyncio.run(register())
    with Azurite() as storage:
        values = {
            **{k: v for k, v in connector.settings.items() if k != "HOST_WEBHOOK_URL"},  # the pull feed only
            "AzureWebJobsStorage": storage.connection_string,
            "GRAPH_CLIENT_ID": client_id,
            "GRAPH_CLIENT_SECRET_NAME": secret_name,
            "PUBLIC_BASE_URL": base,
            "TABLE_PREFIX": f"rev{uuid.uuid4().hex[:8]}",
        }

        def start() -> Connector:
            host = local_host_factory(ROOT, {"Values": values}, port=port)
            fields = {"host": host, "client_id": client_id, "settings": values}
            if "client_secret" in {f.name for f in dataclasses.fields(Connector)}:
                fields["client_secret"] = secret
            return dataclasses.replace(connector, **fields)

        restartable = RestartableConnector(start)
        yield restartable
        restartable.current.host.stop()


def job_runs(connector: Connector) -> int:
    """Queue-triggered invocations this host has started (it serves only this module's tenants)."""
    return sum(
        1
        for line in connector.host.log().splitlines()
        if "invocation started" in line and "trigger=queue" in line
    )


def tenant(connector: Connector, tid: str) -> dict[str, Any]:
    with connector.api() as api:
        body: dict[str, Any] = api.get(f"/api/v1/tenants/{tid}").json()
    return body


def in_state(connector: Connector, tid: str, *states: str) -> dict[str, Any] | None:
    """The tenant when its state is one of `states`."""
    found = tenant(connector, tid)
    return found if found["state"] in states else None


MODES = ("grants", "service_principal")  # the admin removes the app's grants, or the app itself


async def test_revoked_consent_is_recorded_once_and_the_jobs_stop(
    own_connector: RestartableConnector,
) -> None:
    """Both ways an admin revokes, one organisation each, share the host's restart and the waits for quiet
    (the two organisations are independent: each is checked on its own)."""
    connector = own_connector.current
    orgs = {mode: await connected_organisation(connector) for mode in MODES}
    for org in orgs.values():
        wait_for(functools.partial(in_state, connector, org["domain"], "migrating", "active"), timeout=60)

    async with connector.control() as control:
        for mode, org in orgs.items():
            await control.revoke_consent(org["id"], connector.client_id, mode=mode)
    connector = own_connector.restart()  # no token cached for the tenants any more
    await drained(connector, [org["domain"] for org in orgs.values()], QUIET_SECONDS)  # what was under way
    poison_before = {mode: poisoned(connector, org["domain"]) for mode, org in orgs.items()}
    for mode, org in orgs.items():
        tid = org["domain"]
        with connector.api() as api:
            rematch = api.post(f"/api/v1/tenants/{tid}/rematch")
        # 202: the rematch job meets the refusal. 409: Graph's lifecycle notifications (subscriptionRemoved
        # when the service principal is deleted) already made the connector meet it, and the state says so.
        assert rematch.status_code == 202 or (
            rematch.status_code == 409 and tenant(connector, tid)["state"] == "consent_revoked"
        ), (mode, rematch.text)
    for mode, org in orgs.items():
        tid = org["domain"]
        revoked = wait_for(functools.partial(in_state, connector, tid, "consent_revoked"), timeout=60)
        assert revoked["last_error"], mode
        assert revoked["progress"]["phase"] == "stopped", mode

    before = {mode: await tenant_counts(connector, org["domain"]) for mode, org in orgs.items()}
    # Jobs queued with a delay before the revocation (a check-back, a catch-up after the last notification,
    # one waiting for a mailbox) still run once each, find the tenant stopped and end: the runs stop, and
    # none of them calls Graph or Entra.
    deadline = time.monotonic() + 180
    jobs_before = job_runs(connector)
    while True:
        time.sleep(QUIET_SECONDS)
        if (jobs_now := job_runs(connector)) == jobs_before:
            break
        assert time.monotonic() < deadline, "jobs still run for the revoked tenants"
        jobs_before = jobs_now
    for mode, org in orgs.items():
        tid = org["domain"]
        assert await tenant_counts(connector, tid) == before[mode], (
            f"Graph or Entra was called again after the revocation ({mode})"
        )
        # No job for the tenant failed its way to poison.
        assert poisoned(connector, tid) == poison_before[mode], mode

        with connector.api() as api:
            changes = [c["type"] for c in api.get(f"/api/v1/tenants/{tid}/changes").json()["value"]]
            assert changes.count("tenant.consent_revoked") == 1, mode
            # Nothing more is queued for a revoked tenant; reauthorizing is the way back.
            assert api.post(f"/api/v1/tenants/{tid}/rematch").status_code == 409, mode
            assert api.post(f"/api/v1/tenants/{tid}/resync", json={}).status_code == 409, mode
            again = api.post(f"/api/v1/tenants/{tid}/reauthorize")
            assert again.status_code == 200 and "/adminconsent?" in again.json()["consent_url"], mode
    for mode, org in orgs.items():
        assert await tenant_counts(connector, org["domain"]) == before[mode], mode
