"""Secrets live in Key Vault only: after a customer-app tenant is connected and used, no secret value is
in any table, queue message, API answer or log line of the connector."""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from azure.data.tables import TableServiceClient
from azure.storage.queue import QueueServiceClient

from shared.domain.tenants import secret_name
from shared.service.keys import CONSOLE_KEY, HOST_WEBHOOK_SECRET, NOTIFICATION_KEY
from tests.e2e.test_console import console_client, console_link, token_of, vault_secret
from tests.e2e.test_tenants import wait_for
from tests.fixtures.connector import Connector

pytestmark = pytest.mark.e2e

STAFF = ("kim", "ben", "mona")  # the emulator's Fabrikam users


def table_text(connector: Connector) -> tuple[list[str], str]:
    """Every entity of every table of this connector (its TABLE_PREFIX), as text."""
    service = TableServiceClient.from_connection_string(connector.settings["AzureWebJobsStorage"])
    prefix = connector.settings["TABLE_PREFIX"].lower()
    names = [t.name for t in service.list_tables() if t.name.lower().startswith(prefix)]
    rows = [
        json.dumps({**entity, "_keys": [entity["PartitionKey"], entity["RowKey"]]}, default=str)
        for name in names
        for entity in service.get_table_client(name).list_entities()
    ]
    return names, "\n".join(rows)


def queue_text(connector: Connector) -> str:
    """The messages waiting in every queue (a peek of each), decoded."""
    service = QueueServiceClient.from_connection_string(connector.settings["AzureWebJobsStorage"])
    bodies: list[str] = []
    for queue in service.list_queues():
        for message in service.get_queue_client(queue.name).peek_messages(max_messages=32):
            bodies.append(str(message.content))
            with contextlib.suppress(ValueError):
                bodies.append(base64.b64decode(message.content).decode(errors="replace"))
    return "\n".join(bodies)


async def test_no_secret_leaves_key_vault(connector: Connector) -> None:
    async with connector.control() as control:
        info = await control.info()
        fabrikam, app_id, first_secret = (
            info["fabrikam_tenant_id"],
            info["fabrikam_client_id"],
            info["fabrikam_client_secret"],
        )
        second_secret, third_secret = secrets.token_urlsafe(30), secrets.token_urlsafe(30)
        for value in (second_secret, third_secret):
            await control.add_secret(app_id, value=value)
    wrong_secret = secrets.token_urlsafe(30)
    # What a message says: kept only until it is sent, never in a table, a queue message, an answer or a log.
    mail_secrets = {
        "subject": f"Quote {secrets.token_hex(12)}",
        "body": f"body-{secrets.token_hex(12)}",
        "attachment": f"attachment-{secrets.token_hex(12)}",
        "recipient": f"r{secrets.token_hex(8)}@customer.example",
    }
    expires = (datetime.now(UTC) + timedelta(days=50)).replace(microsecond=0).isoformat()
    answers: list[str] = []

    with connector.api() as api:

        def call(method: str, path: str, body: Any = None, expected: int | None = None) -> httpx.Response:
            answer = api.request(method, f"/api/v1/tenants{path}", json=body)
            answers.append(answer.text)
            if expected is not None:
                assert answer.status_code == expected, (method, path, answer.text)
            return answer

        auth = {"mode": "customer_app", "client_id": app_id, "client_secret_expires_at": expires}
        create = {
            "tenant_id": fabrikam,
            "display_name": "Fabrikam",
            "auth": {**auth, "client_secret": wrong_secret},
        }
        call("POST", "", create, 422)
        call("POST", "", {**create, "auth": {**auth, "client_secret": first_secret}}, 201)
        for user in STAFF:
            staff = {"upn": f"{user}@fabrikam.example", "switches": {"mail": True}}
            call("PUT", f"/{fabrikam}/staff/s-{user}", staff, 200)
        wait_for(lambda: call("GET", f"/{fabrikam}").json()["state"] in ("migrating", "active"), timeout=60)
        mail = {
            "from_staff_id": "s-kim",
            "to": [{"name": "Customer", "address": mail_secrets["recipient"]}],
            "subject": mail_secrets["subject"],
            "body": {"content_type": "html", "content": f"<p>{mail_secrets['body']}</p>"},
            "attachments": [
                {
                    "name": "a.txt",
                    "content_base64": base64.b64encode(mail_secrets["attachment"].encode()).decode(),
                }
            ],
        }
        call("PUT", f"/{fabrikam}/mail/hygiene-1", mail, 202)
        wait_for(
            lambda: call("GET", f"/{fabrikam}/mail/hygiene-1").json()["state"] in ("sent", "failed"),
            timeout=60,
        )
        call("PATCH", f"/{fabrikam}/settings", {"privacy_mode": True}, 200)
        call("POST", f"/{fabrikam}/reauthorize", {"client_id": app_id, "client_secret": wrong_secret}, 422)
        call("POST", f"/{fabrikam}/reauthorize", {"client_id": app_id, "client_secret": second_secret}, 200)
        call("POST", f"/{fabrikam}/rematch", None, 202)
        call("GET", f"/{fabrikam}/users", None, 200)
        call("GET", f"/{fabrikam}/changes", None, 200)
        call("GET", "", None, 200)
    token = token_of(console_link(connector, fabrikam)["url"])
    with console_client(connector, token) as console:
        for method, path, body in (
            ("GET", "", None),
            ("GET", "/users", None),
            ("POST", "/reauthorize", {"client_secret": wrong_secret}),
            ("POST", "/reauthorize", {"client_secret": third_secret}),
            ("POST", "/resync", {"only_failed": False}),
        ):
            answers.append(console.request(method, f"/{fabrikam}{path}", json=body).text)
    with connector.api() as api:
        wait_for(lambda: api.get(f"/api/v1/tenants/{fabrikam}/users").json()["total"] == len(STAFF))

    # What must stay in Key Vault, read from Key Vault itself (which also proves the rotation reached it).
    assert await vault_secret(connector, secret_name(fabrikam)) == third_secret
    kept = {
        "customer secret (first)": first_secret,
        "customer secret (second)": second_secret,
        "customer secret (third)": third_secret,
        "a refused customer secret": wrong_secret,
        "connector app secret": await vault_secret(connector, connector.settings["GRAPH_CLIENT_SECRET_NAME"]),
        "console key": await vault_secret(connector, CONSOLE_KEY),
        "notification key": await vault_secret(connector, NOTIFICATION_KEY),
        "host webhook secret": await vault_secret(connector, HOST_WEBHOOK_SECRET),
        "platform identity secret": connector.emulator.platform_client_secret,
        "function key": connector.host.function_key,
        "master key": connector.host.master_key,
        **{f"a mail's {part}": value for part, value in mail_secrets.items()},
    }
    assert kept["connector app secret"] and kept["console key"]
    names, tables = table_text(connector)
    assert names and fabrikam in tables  # the scan sees the connector's data
    log = connector.host.log()
    assert fabrikam in log
    places = {
        "tables": tables,
        "queues": queue_text(connector),
        "API answers": "\n".join(answers),
        "log": log,
    }
    leaks = [
        f"{what} in {where}"
        for what, value in kept.items()
        if value
        for where, text in places.items()
        if value in text or json.dumps(value)[1:-1] in text
    ]
    assert leaks == []
    assert token not in log  # a console link's token is a credential too: never logged with its URL
