"""What the Graph mail adapter puts on the wire and how it reads Graph's answers, through the SDK's real
middleware on an `httpx.MockTransport`: the draft stamped with the connector's property, look-ups by that
property per folder, upload sessions in 320 KiB-multiple ranges without an Authorization header, one send
without the SDK's retries, and the send's failures told apart (429: not sent; 5xx: maybe sent)."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from shared.adapters.graph.client import TenantGraph, TenantKey
from shared.adapters.graph.mail import UPLOAD_CHUNK, GraphMail
from shared.adapters.graph.mailbox_gate import MailboxGate, mailbox_of
from shared.domain.mail import MAIL_PROPERTY_ID, MailAttachment, MailContent, Recipient
from shared.domain.tenants import Tenant
from shared.service.errors import DraftMissing, MailAccessDenied, RateLimited, SendUncertain
from shared.service.ports.mail import MailFolder
from tests.fakes.graph_http import graph_over
from tests.integration.graph.harness import tenant_named

pytestmark = pytest.mark.unit

BASE = "https://graph.example/v1.0"
UPLOAD = "https://outlook.example/upload/session-1?authtoken=x"
TENANT = tenant_named("6d1f4a52-0000-4000-8000-000000000001", "contoso.example")
USER = "0b7c2c1e-0000-4000-8000-00000000000a"
CONTENT = MailContent(
    subject="Your quote",
    body_type="html",
    body="<p>Attached <img src='cid:logo'></p>",
    to=(Recipient("Chris", "chris@example.org"),),
    bcc=(Recipient("", "archive@contoso.example"),),
    headers=(("X-Quote", "4471"),),
    importance="high",
)


class Recorder:
    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answer(request)
        return answer if isinstance(answer, httpx.Response) else httpx.Response(200, json=answer)


class OneTenant:
    def __init__(self, recorder: Recorder) -> None:
        self.graph = graph_over(httpx.MockTransport(recorder), BASE, gate=MailboxGate())

    async def for_tenant(self, key: TenantKey) -> TenantGraph:
        return self.graph


async def key_for(tenant: Tenant) -> TenantKey:
    return TenantKey(tenant.directory_id, "client")


def gateway(answer: Any) -> tuple[GraphMail, Recorder]:
    recorder = Recorder(answer)
    return GraphMail(OneTenant(recorder), key_for), recorder  # type: ignore[arg-type]


def error(status: int, code: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": code}}, headers=headers)


async def test_a_draft_is_stamped_with_the_message_id_and_carries_small_attachments() -> None:
    mail, recorder = gateway(lambda r: {"id": "AAMkD1=", "internetMessageId": "<1@contoso.example>"})
    logo = MailAttachment("logo.png", "image/png", b"\x89PNG", "logo", True)
    item = await mail.create_draft(TENANT, USER, "quote-4471", CONTENT, [logo])
    assert item.id == "AAMkD1=" and item.internet_message_id == "<1@contoso.example>"
    (request,) = recorder.requests
    assert (request.method, request.url.path) == ("POST", f"/v1.0/users/{USER}/messages")
    body = json.loads(request.content)
    assert body["singleValueExtendedProperties"] == [{"id": MAIL_PROPERTY_ID, "value": "quote-4471"}]
    assert body["toRecipients"] == [{"emailAddress": {"name": "Chris", "address": "chris@example.org"}}]
    assert body["bccRecipients"][0]["emailAddress"]["address"] == "archive@contoso.example"
    assert body["internetMessageHeaders"] == [{"name": "X-Quote", "value": "4471"}]
    assert body["body"] == {"contentType": "html", "content": CONTENT.body}
    (attachment,) = body["attachments"]
    assert attachment["@odata.type"] == "#microsoft.graph.fileAttachment"
    assert base64.b64decode(attachment["contentBytes"]) == b"\x89PNG"
    assert (attachment["contentId"], attachment["isInline"]) == ("logo", True)


async def test_a_look_up_filters_one_folder_by_the_property_and_lists_a_drafts_attachments() -> None:
    def answer(request: httpx.Request) -> Any:
        if request.url.path.endswith("/attachments"):
            return {"value": [{"name": "a.pdf"}, {"name": "a.pdf"}]}
        return {"value": [{"id": "AAMkD1=", "internetMessageId": "<1@x>"}]}

    mail, recorder = gateway(answer)
    found = await mail.find(TENANT, USER, "it's-1", MailFolder.DRAFTS)
    assert found is not None and found.attachment_names == ("a.pdf", "a.pdf")
    look_up = recorder.requests[0]
    assert look_up.url.path == f"/v1.0/users/{USER}/mailFolders/drafts/messages"
    query = unquote(str(look_up.url))
    assert f"ep/id eq '{MAIL_PROPERTY_ID}' and ep/value eq 'it''s-1'" in query
    sent, recorder = gateway(lambda r: {"value": []})
    assert await sent.find(TENANT, USER, "m-1", MailFolder.SENT_ITEMS) is None
    assert recorder.requests[0].url.path.endswith("/mailFolders/sentitems/messages")


async def test_a_large_attachment_goes_through_an_upload_session_in_ranges() -> None:
    data = bytes(range(256)) * (UPLOAD_CHUNK // 256 * 2 + 10)  # two full ranges and a bit

    def answer(request: httpx.Request) -> Any:
        if request.url.path.endswith("/createUploadSession"):
            return {"uploadUrl": UPLOAD}
        return httpx.Response(
            200 if request.headers["Content-Range"].endswith(f"{len(data) - 1}/{len(data)}") else 202
        )

    mail, recorder = gateway(answer)
    await mail.add_attachment(TENANT, USER, "AAMkD1=", MailAttachment("plan.pdf", "application/pdf", data))
    create, *puts = recorder.requests
    assert json.loads(create.content)["AttachmentItem"] == {
        "attachmentType": "file",
        "name": "plan.pdf",
        "size": len(data),
        "contentType": "application/pdf",
        "isInline": False,
    }
    assert [p.method for p in puts] == ["PUT"] * 3
    assert all("authorization" not in p.headers for p in puts)
    assert UPLOAD_CHUNK % (320 * 1024) == 0 and UPLOAD_CHUNK < 4_000_000
    assert b"".join(p.content for p in puts) == data
    assert puts[1].headers["Content-Range"] == f"bytes {UPLOAD_CHUNK}-{2 * UPLOAD_CHUNK - 1}/{len(data)}"


async def test_the_send_goes_once_and_its_failures_say_whether_it_may_have_left() -> None:
    mail, recorder = gateway(lambda r: error(503, "ServiceUnavailable", {"Retry-After": "0"}))
    with pytest.raises(SendUncertain):
        await mail.send(TENANT, USER, "AAMkD1=")
    assert len(recorder.requests) == 1  # no retry by the SDK: the first may have sent it
    assert recorder.requests[0].url.raw_path == f"/v1.0/users/{USER}/messages/AAMkD1%3D/send".encode()
    throttled, recorder = gateway(lambda r: error(429, "ApplicationThrottled", {"Retry-After": "9"}))
    with pytest.raises(RateLimited) as limited:
        await throttled.send(TENANT, USER, "AAMkD1=")
    assert limited.value.retry_after == 9 and len(recorder.requests) == 1
    gone, _ = gateway(lambda r: error(404, "ErrorItemNotFound"))
    with pytest.raises(DraftMissing):
        await gone.send(TENANT, USER, "AAMkD1=")


async def test_a_403_on_mail_with_the_directory_readable_asks_for_the_mail_permissions() -> None:
    def answer(request: httpx.Request) -> Any:
        if request.url.path == "/v1.0/users":
            return {"value": [{"id": USER}]}
        return error(403, "ErrorAccessDenied")

    mail, _ = gateway(answer)
    with pytest.raises(MailAccessDenied):
        await mail.create_draft(TENANT, USER, "m-1", CONTENT, [])


async def test_the_gate_lets_four_requests_at_once_into_one_mailbox_and_others_past() -> None:
    gate = MailboxGate()
    running = {"a": 0, "b": 0}
    peak = {"a": 0, "b": 0}

    async def request(user: str) -> None:
        async with gate.hold(f"{BASE}/users/{user}/messages"):
            running[user] += 1
            peak[user] = max(peak[user], running[user])
            await asyncio.sleep(0.01)
            running[user] -= 1

    await asyncio.gather(*(request(u) for u in ("a", "b") for _ in range(12)))
    assert peak == {"a": 4, "b": 4}
    assert mailbox_of("/users/A%40contoso.example/calendar/events") == "a@contoso.example"
    assert mailbox_of("/subscriptions") is None
