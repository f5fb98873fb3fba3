"""The mail row and the mail content store: each behaviour written once, run against the in-memory fakes
and the adapters on Azurite (Table Storage for the rows, Blob Storage for the content)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from shared.adapters.blobs.mail_content import BlobMailContent
from shared.adapters.tables.mail import TableMail
from shared.domain.mail import MailAttachment, MailContent, MailRecord, MailState, Recipient
from shared.service.errors import AlreadyExists, StaleWrite
from shared.service.ports.mail import MailContentStore, MailRepository
from tests.fakes.mail import FakeMailContent, FakeMailRows
from tests.fixtures.azurite import fresh_storage

pytestmark = pytest.mark.contract

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
TID = "contoso.example"


@pytest.fixture(params=["fake", "azurite"])
async def rows(request: pytest.FixtureRequest) -> AsyncIterator[MailRepository]:
    if request.param == "fake":
        yield FakeMailRows()
        return
    async with fresh_storage(request.getfixturevalue("azurite"), "mail") as storage:
        yield TableMail(storage)


@pytest.fixture(params=["fake", "azurite"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[MailContentStore]:
    if request.param == "fake":
        yield FakeMailContent()
        return
    async with fresh_storage(request.getfixturevalue("azurite"), "mailc") as storage:
        yield BlobMailContent(storage, f"mail-{uuid.uuid4().hex[:12]}")


def queued(message_id: str = "m.1~x@y", tenant_id: str = TID) -> MailRecord:
    return MailRecord(tenant_id, message_id, "f" * 64, "s1", 3, False, MailState.QUEUED, T0, T0)


def content(size: int = 10) -> MailContent:
    return MailContent(
        subject="Quote 4471 — ünïcode",
        body_type="html",
        body="<p>Hello <img src='cid:logo'></p>",
        to=(Recipient("Chris", "chris@example.org"),),
        cc=(Recipient("", "office@example.org"),),
        bcc=(Recipient("Archive", "archive@contoso.example"),),
        reply_to=(Recipient("Desk", "desk@contoso.example"),),
        attachments=(
            MailAttachment("logo.png", "image/png", bytes(range(256)) * size, "logo", True),
            MailAttachment("quote.pdf", "application/pdf", b"%PDF-1.7"),
        ),
        importance="high",
        headers=(("X-Quote", "4471"), ("X-Desk", "north")),
    )


async def test_unfinished_lists_the_messages_neither_sent_nor_failed_unchanged_since(
    rows: MailRepository,
) -> None:
    later = T0 + timedelta(minutes=5)
    waiting = await rows.save(queued("m-1"))
    sending = await rows.save(replace(queued("m-2"), state=MailState.SENDING))
    await rows.save(replace(queued("m-3"), state=MailState.SENT))
    await rows.save(replace(queued("m-4"), state=MailState.FAILED))
    await rows.save(replace(queued("m-5"), updated_at=later))  # changed since
    await rows.save(queued("m-1", tenant_id="fabrikam.example"))

    found = await rows.unfinished(TID, updated_before=T0 + timedelta(minutes=1))

    assert sorted(found, key=lambda r: r.message_id) == [waiting, sending]
    assert await rows.unfinished(TID, updated_before=T0) == []


async def test_a_row_round_trips_and_saves_are_guarded(rows: MailRepository) -> None:
    saved = await rows.save(queued())
    assert await rows.get(TID, "m.1~x@y") == saved
    with pytest.raises(AlreadyExists):
        await rows.save(queued())
    sent = await rows.save(
        replace(
            saved,
            state=MailState.SENT,
            attempts=2,
            graph_user_id="g1",
            draft_id="AAMkAD=/+",
            send_requested_at=T0,
            sent_at=T0,
            internet_message_id="<1@contoso.example>",
            sent_copy_removed=True,
        )
    )
    assert await rows.get(TID, "m.1~x@y") == sent
    with pytest.raises(StaleWrite):
        await rows.save(replace(saved, error="late"))  # the etag of before


async def test_a_tenants_rows_go_with_its_purge_and_no_other(rows: MailRepository) -> None:
    await rows.save(queued("m-1"))
    await rows.save(queued("m-1", "fabrikam.example"))
    await rows.delete_tenant(TID)
    assert await rows.get(TID, "m-1") is None
    assert await rows.get("fabrikam.example", "m-1") is not None


async def test_content_round_trips_and_is_deleted(store: MailContentStore) -> None:
    await store.put(TID, "m/1?", content(size=5_000))  # 1.28 MB of attachment
    assert await store.get(TID, "m/1?") == content(size=5_000)
    await store.delete(TID, "m/1?")
    await store.delete(TID, "m/1?")  # idempotent
    assert await store.get(TID, "m/1?") is None


async def test_a_tenants_content_goes_with_its_purge_and_no_other(store: MailContentStore) -> None:
    await store.put(TID, "m-1", content())
    await store.put(TID, "m-2", content())
    await store.put("contoso.example.org", "m-1", content())  # a key with the tenant's as prefix
    await store.delete_tenant(TID)
    assert await store.get(TID, "m-1") is None and await store.get(TID, "m-2") is None
    assert await store.get("contoso.example.org", "m-1") == content()
