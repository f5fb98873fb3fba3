"""Mail sent as Exchange Online does, through msgraph-sdk and msgraph-core's LargeFileUploadTask: a draft
stamped with an extended property, found again by `$filter`, attachments inline and through an upload
session, send → Sent Items, what was delivered, faults after the send, permissions and sending limits.

Uses the shared session emulator (`connector`: the demo connector app, consented in Contoso). Data is
not reset between tests, so each test marks its messages with its own property value.
"""

from __future__ import annotations

import asyncio
import base64
import io
import os
import uuid

import httpx
import pytest
from kiota_abstractions.api_error import APIError
from kiota_abstractions.authentication import AnonymousAuthenticationProvider
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphRequestAdapter
from msgraph.generated.models.attachment_item import AttachmentItem
from msgraph.generated.models.attachment_type import AttachmentType
from msgraph.generated.models.body_type import BodyType
from msgraph.generated.models.email_address import EmailAddress
from msgraph.generated.models.file_attachment import FileAttachment
from msgraph.generated.models.item_body import ItemBody
from msgraph.generated.models.message import Message
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.recipient import Recipient
from msgraph.generated.models.single_value_legacy_extended_property import SingleValueLegacyExtendedProperty
from msgraph.generated.users.item.mail_folders.item.messages.messages_request_builder import (
    MessagesRequestBuilder,
)
from msgraph.generated.users.item.messages.item.attachments.create_upload_session.create_upload_session_post_request_body import (  # noqa: E501
    CreateUploadSessionPostRequestBody,
)
from msgraph.generated.users.item.messages.item.message_item_request_builder import MessageItemRequestBuilder
from msgraph_core import GraphClientFactory
from msgraph_core.tasks.large_file_upload import LargeFileUploadTask

from tests.contract.emulator.conftest import Connector, raw_token

pytestmark = pytest.mark.contract

SENDER = "brian.johnson@contoso.example"
PROP = "String {d4ab4ab8-8c1e-4d6f-9f5e-2d1a6a3c7e11} Name HostMessageId"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def draft(host_id: str, *, to: list[str] | None = None, html: str | None = None) -> Message:
    return Message(
        subject=f"Your appointment {host_id}",
        body=ItemBody(
            content_type=BodyType.Html if html else BodyType.Text,
            content=html or "Your appointment is confirmed.",
        ),
        to_recipients=[
            Recipient(email_address=EmailAddress(address=a)) for a in (to or ["customer@fabrikam.example"])
        ],
        single_value_extended_properties=[SingleValueLegacyExtendedProperty(id=PROP, value=host_id)],
    )


def by_property(host_id: str) -> str:
    return f"singleValueExtendedProperties/any(ep: ep/id eq '{PROP}' and ep/value eq '{host_id}')"


async def find(connector: Connector, folder: str, host_id: str) -> list[Message]:
    query = MessagesRequestBuilder.MessagesRequestBuilderGetQueryParameters(
        filter=by_property(host_id),
        select=["id", "isDraft", "internetMessageId", "sentDateTime", "subject"],
        expand=[f"singleValueExtendedProperties($filter=id eq '{PROP}')"],
        top=5,
    )
    folders = connector.graph.users.by_user_id(SENDER).mail_folders
    page = await folders.by_mail_folder_id(folder).messages.get(RequestConfiguration(query_parameters=query))
    assert page is not None and page.value is not None
    return page.value


async def create(connector: Connector, host_id: str, **kwargs) -> Message:
    created = await connector.graph.users.by_user_id(SENDER).messages.post(draft(host_id, **kwargs))
    assert created is not None and created.id
    return created


async def send(connector: Connector, message_id: str) -> None:
    await connector.graph.users.by_user_id(SENDER).messages.by_message_id(message_id).send.post()


async def test_a_draft_carries_its_property_and_is_found_by_it_in_drafts(connector):
    host_id = uuid.uuid4().hex
    created = await create(connector, host_id)
    assert created.is_draft is True
    assert created.internet_message_id and created.conversation_id and created.created_date_time
    assert created.sent_date_time is None

    [found] = await find(connector, "drafts", host_id)
    assert found.id == created.id and found.is_draft is True
    assert [(p.id, p.value) for p in found.single_value_extended_properties] == [(PROP, host_id)]
    assert await find(connector, "sentitems", host_id) == []
    assert await find(connector, "drafts", uuid.uuid4().hex) == []

    config = RequestConfiguration(
        query_parameters=MessageItemRequestBuilder.MessageItemRequestBuilderGetQueryParameters(
            expand=[f"singleValueExtendedProperties($filter=id eq '{PROP}')"]
        )
    )
    read = await connector.graph.users.by_user_id(SENDER).messages.by_message_id(created.id).get(config)
    assert read.subject == f"Your appointment {host_id}"
    assert [p.value for p in read.single_value_extended_properties] == [host_id]


async def test_send_moves_the_draft_to_sent_items_and_delivers_one_copy_per_recipient(connector, control):
    host_id = uuid.uuid4().hex
    created = await create(connector, host_id, to=["ann@fabrikam.example", "bob@fabrikam.example"])
    await send(connector, created.id)

    assert await find(connector, "drafts", host_id) == []
    [sent] = await find(connector, "sentitems", host_id)
    assert sent.is_draft is False and sent.sent_date_time is not None
    assert sent.internet_message_id == created.internet_message_id
    # Moving folders gives the item a new REST id, as in Exchange.
    assert sent.id != created.id

    copies = await control.mail_deliveries(internet_message_id=created.internet_message_id)
    assert sorted(c["recipient"] for c in copies) == ["ann@fabrikam.example", "bob@fabrikam.example"]
    assert all(c["extended_properties"] == {PROP: host_id} for c in copies)
    assert all(c["sender"] == SENDER and c["subject"] == f"Your appointment {host_id}" for c in copies)


async def test_sending_again_is_refused_and_delivers_nothing_more(connector, control):
    host_id = uuid.uuid4().hex
    created = await create(connector, host_id)
    await send(connector, created.id)
    with pytest.raises(ODataError) as err:
        await send(connector, created.id)
    assert err.value.response_status_code == 404
    assert err.value.error.code == "ErrorItemNotFound"

    [sent] = await find(connector, "sentitems", host_id)
    with pytest.raises(ODataError) as again:
        await send(connector, sent.id)
    assert again.value.response_status_code == 404
    assert len(await control.mail_deliveries(internet_message_id=created.internet_message_id)) == 1


async def test_a_message_found_across_folders_with_the_same_filter(connector):
    host_id = uuid.uuid4().hex
    created = await create(connector, host_id)
    await send(connector, created.id)
    response = await connector.http.get(
        f"users/{SENDER}/messages", params={"$filter": by_property(host_id), "$select": "isDraft"}
    )
    assert response.status_code == 200
    [item] = response.json()["value"]
    assert item["isDraft"] is False and set(item) == {"@odata.etag", "id", "isDraft"}


async def test_attachments_inline_and_inline_image(connector, control):
    host_id = uuid.uuid4().hex
    created = await create(connector, host_id, html='<p>Hello <img src="cid:logo"></p>')
    attachments = connector.graph.users.by_user_id(SENDER).messages.by_message_id(created.id).attachments
    pdf = await attachments.post(
        FileAttachment(name="invoice.pdf", content_type="application/pdf", content_bytes=b"%PDF-1.4 x" * 100)
    )
    logo = await attachments.post(
        FileAttachment(
            name="logo.png", content_type="image/png", content_bytes=PNG, is_inline=True, content_id="logo"
        )
    )
    assert pdf.size == 1000 and pdf.id
    assert logo.is_inline is True and logo.content_id == "logo"
    await send(connector, created.id)
    [copy] = await control.mail_deliveries(internet_message_id=created.internet_message_id)
    assert copy["attachments"] == [
        {"name": "invoice.pdf", "size": 1000, "is_inline": False, "content_id": None},
        {"name": "logo.png", "size": len(PNG), "is_inline": True, "content_id": "logo"},
    ]


async def test_an_attachment_of_3_mb_or_more_needs_an_upload_session(connector):
    created = await create(connector, uuid.uuid4().hex)
    big = base64.b64encode(b"x" * (3 * 1024 * 1024)).decode()
    response = await connector.http.post(
        f"users/{SENDER}/messages/{created.id}/attachments",
        json={"@odata.type": "#microsoft.graph.fileAttachment", "name": "big.bin", "contentBytes": big},
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "ErrorRequestEntityTooLarge"
    small = await connector.http.post(
        f"users/{SENDER}/messages/{created.id}/attachments/createUploadSession",
        json={"AttachmentItem": {"attachmentType": "file", "name": "small.bin", "size": 1024}},
    )
    assert small.status_code == 400
    assert small.json()["error"]["code"] == "ErrorAttachmentSizeShouldNotBeLessThanMinimumSize"
    too_big = await connector.http.post(
        f"users/{SENDER}/messages/{created.id}/attachments/createUploadSession",
        json={"AttachmentItem": {"attachmentType": "file", "name": "huge.bin", "size": 151 * 1024 * 1024}},
    )
    assert too_big.status_code == 413
    assert too_big.json()["error"]["code"] == "ErrorMessageSizeExceeded"


def anonymous_adapter(connector: Connector) -> GraphRequestAdapter:
    """The upload URL is pre-authenticated: the task's requests must not carry the Graph token."""
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(verify=connector.emulator.ssl_context())
    )
    return GraphRequestAdapter(AnonymousAuthenticationProvider(), client=http)


async def upload_session(connector: Connector, message_id: str, name: str, size: int):
    attachments = connector.graph.users.by_user_id(SENDER).messages.by_message_id(message_id).attachments
    body = CreateUploadSessionPostRequestBody(
        attachment_item=AttachmentItem(
            attachment_type=AttachmentType.File, name=name, size=size, content_type="application/pdf"
        )
    )
    session = await attachments.create_upload_session.post(body)
    assert session is not None and session.upload_url and session.next_expected_ranges == ["0-"]
    return session


@pytest.mark.parametrize("chunk", [5 * 1024 * 1024, 2 * 1024 * 1024])
async def test_large_file_upload_task_attaches_a_5_mb_file(connector, control, chunk):
    host_id = uuid.uuid4().hex
    created = await create(connector, host_id)
    content = os.urandom(5_000_000)
    session = await upload_session(connector, created.id, "brochure.pdf", len(content))
    assert session.upload_url.startswith(connector.emulator.authority + "/api/gv1.0/")

    task = LargeFileUploadTask(
        session, anonymous_adapter(connector), io.BytesIO(content), max_chunk_size=chunk
    )
    await task.upload()

    response = await connector.http.get(f"users/{SENDER}/messages/{created.id}/attachments")
    [attached] = response.json()["value"]
    assert attached["name"] == "brochure.pdf" and attached["size"] == len(content)
    assert base64.b64decode(attached["contentBytes"]) == content
    await send(connector, created.id)
    [copy] = await control.mail_deliveries(internet_message_id=created.internet_message_id)
    assert copy["attachments"] == [
        {"name": "brochure.pdf", "size": 5_000_000, "is_inline": False, "content_id": None}
    ]


async def test_upload_url_refuses_the_graph_token(connector):
    created = await create(connector, uuid.uuid4().hex)
    content = os.urandom(3_500_000)
    session = await upload_session(connector, created.id, "a.pdf", len(content))
    task = LargeFileUploadTask(session, connector.graph.request_adapter, io.BytesIO(content))
    with pytest.raises(APIError) as err:
        await task.upload()
    assert err.value.response_status_code == 401
    response = await connector.http.get(f"users/{SENDER}/messages/{created.id}/attachments")
    assert response.json()["value"] == []


async def test_upload_ranges_in_order_then_201_with_location(connector):
    created = await create(connector, uuid.uuid4().hex)
    content = os.urandom(4_000_000)
    session = await upload_session(connector, created.id, "b.pdf", len(content))
    async with httpx.AsyncClient(verify=connector.emulator.ssl_context()) as plain:

        async def put(start: int, end: int) -> httpx.Response:
            return await plain.put(
                session.upload_url,
                content=content[start : end + 1],
                headers={"Content-Range": f"bytes {start}-{end}/{len(content)}"},
            )

        first = await put(0, 2_097_151)
        assert first.status_code == 200
        assert first.json()["nextExpectedRanges"] == ["2097152-3999999"]
        gap = await put(3_000_000, 3_999_999)
        assert gap.status_code == 416
        last = await put(2_097_152, 3_999_999)
        assert last.status_code == 201
        assert "/Attachments('" in last.headers["Location"]
    response = await connector.http.get(
        f"users/{SENDER}/messages/{created.id}/attachments", params={"$select": "name,size"}
    )
    [attached] = response.json()["value"]
    assert (attached["@odata.type"], attached["name"], attached["size"]) == (
        "#microsoft.graph.fileAttachment",
        "b.pdf",
        4_000_000,
    )
    assert "contentBytes" not in attached


async def test_send_that_took_effect_then_503_delivered_once(connector, control):
    host_id = uuid.uuid4().hex
    created = await create(connector, host_id)
    await control.add_fault(status=503, method="POST", path=r"/messages/[^/]+/send$", when="after", count=4)
    with pytest.raises(ODataError) as err:
        # The send took effect, then 503; kiota retries the POST, which finds the draft gone.
        await send(connector, created.id)
    assert err.value.response_status_code == 404
    assert await find(connector, "drafts", host_id) == []
    assert len(await find(connector, "sentitems", host_id)) == 1
    assert len(await control.mail_deliveries(internet_message_id=created.internet_message_id)) == 1


async def test_send_slower_than_the_client_still_goes_out_once(connector, control):
    host_id = uuid.uuid4().hex
    created = await create(connector, host_id)
    await control.add_fault(delay_ms=1500, method="POST", path=r"/send$", count=1)
    with pytest.raises(httpx.TimeoutException):
        await connector.http.post(f"users/{SENDER}/messages/{created.id}/send", timeout=0.5)
    for _ in range(50):
        if await find(connector, "sentitems", host_id):
            break
        await asyncio.sleep(0.1)
    assert len(await control.mail_deliveries(internet_message_id=created.internet_message_id)) == 1


async def test_permissions_are_checked_per_operation(connector, control):
    emulator = connector.emulator
    host_id = uuid.uuid4().hex
    created = await create(connector, host_id)
    await control.revoke_consent(connector.tenant_id, emulator.client_id)
    await control.consent(connector.tenant_id, emulator.client_id, ["Mail.Send"])
    try:
        token = await raw_token(emulator, emulator.tenant_id, emulator.client_id, emulator.client_secret)
        auth = {"Authorization": f"Bearer {token}"}
        refused = await connector.http.post(f"users/{SENDER}/messages", json={"subject": "x"}, headers=auth)
        assert refused.status_code == 403
        assert refused.json()["error"] == {
            "code": "ErrorAccessDenied",
            "message": "Access is denied. Check credentials and try again.",
            "innerError": refused.json()["error"]["innerError"],
        }
        listing = await connector.http.get(f"users/{SENDER}/mailFolders/drafts/messages", headers=auth)
        assert listing.status_code == 403
        sent = await connector.http.post(f"users/{SENDER}/messages/{created.id}/send", headers=auth)
        assert sent.status_code == 202

        await control.revoke_consent(connector.tenant_id, emulator.client_id)
        await control.consent(connector.tenant_id, emulator.client_id, ["Mail.ReadWrite"])
        token = await raw_token(emulator, emulator.tenant_id, emulator.client_id, emulator.client_secret)
        other = await create(connector, uuid.uuid4().hex)
        no_send = await connector.http.post(
            f"users/{SENDER}/messages/{other.id}/send", headers={"Authorization": f"Bearer {token}"}
        )
        assert no_send.status_code == 403
        assert no_send.json()["error"]["code"] == "ErrorAccessDenied"
    finally:
        await control.revoke_consent(connector.tenant_id, emulator.client_id)
        await control.consent(connector.tenant_id, emulator.client_id)


async def test_message_rate_limit_answers_429_with_retry_after_then_sends(connector, control):
    await control.set_settings(mail_message_rate_per_minute=2)
    ids = [uuid.uuid4().hex for _ in range(3)]
    drafts = [await create(connector, i) for i in ids]
    await send(connector, drafts[0].id)
    await send(connector, drafts[1].id)
    response = await connector.http.post(f"users/{SENDER}/messages/{drafts[2].id}/send")
    assert response.status_code == 429
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    assert await find(connector, "drafts", ids[2])  # nothing sent, the draft stays
    assert await control.mail_deliveries(internet_message_id=drafts[2].internet_message_id) == []

    await control.advance_clock(seconds=retry_after)
    again = await connector.http.post(f"users/{SENDER}/messages/{drafts[2].id}/send")
    assert again.status_code == 202
    assert len(await control.mail_deliveries(internet_message_id=drafts[2].internet_message_id)) == 1


async def test_recipients_per_message_and_per_day(connector, control):
    await control.set_settings(mail_recipients_per_message=3, mail_recipients_per_day=5)
    many = await create(connector, uuid.uuid4().hex, to=[f"p{i}@fabrikam.example" for i in range(4)])
    response = await connector.http.post(f"users/{SENDER}/messages/{many.id}/send")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "ErrorTooManyRecipients"

    three = await create(connector, uuid.uuid4().hex, to=[f"q{i}@fabrikam.example" for i in range(3)])
    await send(connector, three.id)
    over = await create(connector, uuid.uuid4().hex, to=[f"r{i}@fabrikam.example" for i in range(3)])
    refused = await connector.http.post(f"users/{SENDER}/messages/{over.id}/send")
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 3600
    await control.advance_clock(hours=24)
    emulator = connector.emulator  # the token of a day ago has expired
    token = await raw_token(emulator, emulator.tenant_id, emulator.client_id, emulator.client_secret)
    later = await connector.http.post(
        f"users/{SENDER}/messages/{over.id}/send", headers={"Authorization": f"Bearer {token}"}
    )
    assert later.status_code == 202


async def test_send_mail_is_recorded_as_delivered_and_saved_to_sent_items(connector, control):
    subject = f"Confirmed {uuid.uuid4().hex}"
    response = await connector.http.post(
        f"users/{SENDER}/sendMail",
        json={
            "message": {
                "subject": subject,
                "toRecipients": [{"emailAddress": {"address": "zoe@fabrikam.example"}}],
                "bccRecipients": [{"emailAddress": {"address": "audit@contoso.example"}}],
            }
        },
    )
    assert response.status_code == 202
    copies = [c for c in await control.mail_deliveries(mailbox=SENDER) if c["subject"] == subject]
    assert sorted((c["recipient"], c["recipient_type"]) for c in copies) == [
        ("audit@contoso.example", "bcc"),
        ("zoe@fabrikam.example", "to"),
    ]
    listed = await connector.http.get(
        f"users/{SENDER}/mailFolders/sentitems/messages", params={"$filter": f"subject eq '{subject}'"}
    )
    assert [m["subject"] for m in listed.json()["value"]] == [subject]


async def test_unknown_message_is_404_and_delete_removes_a_draft(connector):
    host_id = uuid.uuid4().hex
    created = await create(connector, host_id)
    missing = await connector.http.post(f"users/{SENDER}/messages/AAMkADnope/send")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "ErrorItemNotFound"
    patched = await connector.http.patch(f"users/{SENDER}/messages/{created.id}", json={"subject": "Changed"})
    assert patched.status_code == 200 and patched.json()["subject"] == "Changed"
    assert (await connector.http.delete(f"users/{SENDER}/messages/{created.id}")).status_code == 204
    assert await find(connector, "drafts", host_id) == []


async def test_last_range_that_took_effect_then_503_attaches_once(connector, control):
    created = await create(connector, uuid.uuid4().hex)
    content = os.urandom(3_200_000)
    session = await upload_session(connector, created.id, "c.pdf", len(content))
    await control.add_fault(status=503, method="PUT", path=r"/api/gv1\.0/", when="after", count=1)
    headers = {"Content-Range": f"bytes 0-{len(content) - 1}/{len(content)}"}
    async with httpx.AsyncClient(verify=connector.emulator.ssl_context()) as plain:
        first = await plain.put(session.upload_url, content=content, headers=headers)
        assert first.status_code == 503
        again = await plain.put(session.upload_url, content=content, headers=headers)
        assert again.status_code == 201
    response = await connector.http.get(f"users/{SENDER}/messages/{created.id}/attachments")
    assert [a["name"] for a in response.json()["value"]] == ["c.pdf"]


async def test_a_recipient_in_the_tenant_finds_the_message_in_their_inbox(connector):
    created = await create(connector, uuid.uuid4().hex, to=["alex.wilber@contoso.example"])
    await send(connector, created.id)
    inbox = await connector.http.get(
        "users/alex.wilber@contoso.example/mailFolders/inbox/messages",
        params={"$filter": f"internetMessageId eq '{created.internet_message_id}'"},
    )
    [received] = inbox.json()["value"]
    assert received["isDraft"] is False and received["subject"] == created.subject
    assert received["from"]["emailAddress"]["address"] == SENDER
