"""Mail from a staff member's mailbox end to end: PUT through the host API on the local host, sent by the
real app through the emulator's Graph, counted in the emulator's record of delivered copies (exactly one
per recipient), tracked by GET and on the feed. Faults come from the emulator's fault rules (`when:
after`: the send took effect, then the error)."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from shared.domain.mail import MAIL_PROPERTY_ID
from tests.e2e.test_sync import migrated_organisation, wait_for
from tests.fixtures.connector import Connector

pytestmark = pytest.mark.e2e

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


@dataclass
class Org:
    connector: Connector
    id: str
    domain: str

    def user(self, name: str) -> str:
        return f"{name}@{self.domain}"

    def api(self) -> httpx.Client:
        client: httpx.Client = self.connector.api()
        return client


async def organisation(connector: Connector) -> Org:
    """adele (mail switched on) and ben (mail off), migrated."""
    base = await migrated_organisation(connector, events_per_user=0)
    org = Org(connector, base["id"], base["domain"])
    with org.api() as api:
        staff = {"upn": org.user("adele"), "switches": {"mail": True}}
        answer = api.put(f"/api/v1/tenants/{org.domain}/staff/s-adele", json=staff)
        assert answer.json()["switches"]["mail"] is True, answer.text
    return org


@pytest.fixture(scope="module")
async def org(connector: Connector) -> Org:
    return await organisation(connector)


def message(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "from_staff_id": "s-adele",
        "to": [{"name": "Chris Customer", "address": "chris@customer.example"}],
        "subject": "Your appointment is confirmed",
        "body": {"content_type": "text", "content": "See you on Monday."},
    }
    return {**base, **changes}


def put(org: Org, message_id: str, body: dict[str, Any]) -> httpx.Response:
    with org.api() as api:
        return api.put(f"/api/v1/tenants/{org.domain}/mail/{message_id}", json=body)


def get(org: Org, message_id: str) -> dict[str, Any]:
    with org.api() as api:
        answer = api.get(f"/api/v1/tenants/{org.domain}/mail/{message_id}")
        assert answer.status_code == 200, answer.text
        return dict(answer.json())


def final(org: Org, message_id: str, timeout: float = 90) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        body = get(org, message_id)
        return body if body["state"] in ("sent", "failed") else None

    return dict(wait_for(check, timeout=timeout))


async def delivered(org: Org, message_id: str) -> list[dict[str, Any]]:
    """Every copy the emulator delivered of the message the connector stamped with `message_id`."""
    async with org.connector.control() as control:
        copies = await control.mail_deliveries(mailbox=org.user("adele"))
    return [c for c in copies if (c.get("extended_properties") or {}).get(MAIL_PROPERTY_ID) == message_id]


def feed(org: Org, kind: str) -> list[dict[str, Any]]:
    with org.api() as api:
        changes = api.get(f"/api/v1/tenants/{org.domain}/changes", params={"limit": 1000}).json()["value"]
    return [c["data"] for c in changes if c["type"] == kind]


def new_id(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


async def test_a_plain_mail_is_sent_once_from_the_staff_mailbox(org: Org) -> None:
    message_id = new_id("plain")
    answer = put(org, message_id, message())
    assert answer.status_code == 202 and answer.json()["state"] == "queued", answer.text
    sent = final(org, message_id)
    assert sent["state"] == "sent" and sent["attempts"] == 1 and sent["error"] is None, sent
    copies = await delivered(org, message_id)
    assert len(copies) == 1
    assert copies[0]["internet_message_id"] == sent["internet_message_id"]
    assert copies[0]["recipient"] == "chris@customer.example"
    assert [d["internet_message_id"] for d in feed(org, "mail.sent") if d["message_id"] == message_id] == [
        sent["internet_message_id"]
    ]


async def test_html_with_an_inline_image_keeps_the_image_inline(org: Org) -> None:
    message_id = new_id("html")
    logo = {
        "name": "logo.png",
        "content_type": "image/png",
        "content_base64": base64.b64encode(PNG).decode(),
        "content_id": "logo",
        "is_inline": True,
    }
    body = {"content_type": "html", "content": "<p>Welcome <img src='cid:logo'></p>"}
    assert put(org, message_id, message(body=body, attachments=[logo])).status_code == 202
    assert final(org, message_id)["state"] == "sent"
    (copy,) = await delivered(org, message_id)
    (attachment,) = copy["attachments"]
    assert (attachment["name"], attachment["is_inline"], attachment["content_id"]) == (
        "logo.png",
        True,
        "logo",
    )


async def test_a_large_attachment_goes_through_an_upload_session(org: Org) -> None:
    message_id = new_id("large")
    data = bytes(range(256)) * (5 * 4096)  # 5 MiB: over Graph's 3 MB for a request
    plan = {
        "name": "plan.pdf",
        "content_type": "application/pdf",
        "content_base64": base64.b64encode(data).decode(),
    }
    async with org.connector.control() as control:
        before = (await control.stats())["requests"]
    assert put(org, message_id, message(attachments=[plan])).status_code == 202
    assert final(org, message_id)["state"] == "sent"
    (copy,) = await delivered(org, message_id)
    assert [(a["name"], a["size"]) for a in copy["attachments"]] == [("plan.pdf", len(data))]
    async with org.connector.control() as control:
        after = (await control.stats())["requests"]
    sessions = [k for k in after if k.endswith("/createUploadSession") and after[k] > before.get(k, 0)]
    assert sessions, "no upload session was made"


async def test_the_same_put_twice_is_one_message_and_other_content_is_a_409(org: Org) -> None:
    message_id = new_id("twice")
    first = put(org, message_id, message())
    second = put(org, message_id, message())
    assert first.status_code == 202 and second.status_code in (200, 202), second.text
    conflict = put(org, message_id, message(subject="Something else"))
    assert conflict.status_code == 409 and conflict.json()["error"]["field"] == "message_id", conflict.text
    assert final(org, message_id)["state"] == "sent"
    again = put(org, message_id, message())
    assert again.status_code == 200 and again.json()["state"] == "sent"
    assert len(await delivered(org, message_id)) == 1


async def test_a_send_that_took_effect_then_answered_503_is_delivered_exactly_once(org: Org) -> None:
    message_id = new_id("lost")
    async with org.connector.control() as control:
        await control.add_fault(status=503, path="/send$", method="POST", when="after", count=1)
    try:
        assert put(org, message_id, message()).status_code == 202
        sent = final(org, message_id)
    finally:
        async with org.connector.control() as control:
            await control.clear_faults()
    assert sent["state"] == "sent" and sent["attempts"] >= 2, sent
    assert len(await delivered(org, message_id)) == 1


async def test_throttled_sending_still_goes_out_once(org: Org) -> None:
    message_id = new_id("throttled")
    async with org.connector.control() as control:
        await control.add_fault(status=429, retry_after=1, path="/send$", method="POST", count=2)
    try:
        assert put(org, message_id, message()).status_code == 202
        sent = final(org, message_id)
    finally:
        async with org.connector.control() as control:
            await control.clear_faults()
    assert sent["state"] == "sent" and sent["attempts"] == 3 and sent["error"] is None, sent
    assert len(await delivered(org, message_id)) == 1


async def test_mail_switched_off_fails_with_what_to_do(org: Org) -> None:
    message_id = new_id("off")
    assert put(org, message_id, message(from_staff_id="s-ben")).status_code == 202
    failed = final(org, message_id)
    assert failed["state"] == "failed" and "switches.mail" in failed["error"], failed
    assert [d["reason"] for d in feed(org, "mail.failed") if d["message_id"] == message_id] == [
        failed["error"]
    ]
    assert await delivered(org, message_id) == []


async def test_bad_input_is_refused_naming_the_field(org: Org) -> None:
    bad = message(attachments=[{"name": "a.txt", "content_base64": "%%%"}])
    answer = put(org, new_id("bad"), bad)
    assert answer.status_code == 400 and answer.json()["error"]["field"] == "attachments[0].content_base64"
    unknown = put(org, new_id("bad"), message(from_staff_id="s-nobody"))
    assert unknown.status_code == 422 and unknown.json()["error"]["field"] == "from_staff_id"


async def test_a_tenant_without_mail_send_fails_asking_to_reauthorize(connector: Connector) -> None:
    other = await organisation(connector)
    client_id = connector.settings["GRAPH_CLIENT_ID"]
    async with connector.control() as control:
        await control.revoke_consent(other.id, client_id)
        await control.consent(other.id, client_id, ["Calendars.ReadWrite", "User.Read.All", "Mail.ReadWrite"])
        await control.revoke_tokens(other.id, client_id)
    message_id = new_id("nosend")
    assert put(other, message_id, message()).status_code == 202
    failed = final(other, message_id)
    assert failed["state"] == "failed" and "reauthorize" in failed["error"], failed
    assert await delivered(other, message_id) == []
