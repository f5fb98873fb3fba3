"""The mail gateway's contract, written once and run against the fake mailbox (`tests/fakes/mail.py`) and
the real Graph adapter (`shared/adapters/graph/mail.py`, msgraph-sdk's request adapter) on the emulator:
drafts found by the connector's property per folder, attachments inline and through upload sessions,
send moving the draft out of Drafts with one delivered copy, a send answered 503 after its effect, 429,
the consent without Mail.Send, a mailbox that is not there."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator
from typing import Protocol

import pytest

from shared.adapters.graph.mail import GraphMail
from shared.domain.mail import MAIL_PROPERTY_ID, MailAttachment, MailContent, Recipient
from shared.domain.tenants import Tenant
from shared.service import limits
from shared.service.errors import (
    DraftMissing,
    MailAccessDenied,
    MailboxUnavailable,
    RateLimited,
    SendUncertain,
)
from shared.service.ports.mail import MailFolder, MailGateway
from tests.fakes.mail import FakeOutlookMail
from tests.integration.graph.harness import EmulatorGraph, open_emulator_graph, tenant_named

pytestmark = pytest.mark.contract

CONTENT = MailContent(
    subject="Your quote",
    body_type="html",
    body="<p>Attached <img src='cid:logo'></p>",
    to=(Recipient("Chris", "chris@fabrikam.example"),),
    cc=(Recipient("", "office@fabrikam.example"),),
    headers=(("X-Quote", "4471"),),
)
LOGO = MailAttachment("logo.png", "image/png", b"\x89PNG\r\n\x1a\n" * 8, "logo", True)
LARGE = MailAttachment(
    "plan.pdf", "application/pdf", bytes(range(256)) * (limits.INLINE_ATTACHMENT_BYTES // 256 + 9)
)


class Driver(Protocol):
    mail: MailGateway
    tenant: Tenant

    async def new_mailbox(self) -> str: ...
    async def copies(self, user: str, message_id: str) -> int: ...
    async def send_fails_after_its_effect(self) -> None: ...
    async def send_throttled(self) -> None: ...
    async def consent_without_mail_send(self) -> None: ...
    async def no_mailbox(self) -> str: ...


class FakeDriver:
    _ids = itertools.count(1)

    def __init__(self) -> None:
        self.fake = FakeOutlookMail()
        self.mail: MailGateway = self.fake
        self.tenant = tenant_named("3f1d6a52-0000-4000-8000-000000000001", "contoso.example")

    async def new_mailbox(self) -> str:
        return f"user-{next(self._ids)}"

    async def copies(self, user: str, message_id: str) -> int:
        return sum(1 for d in self.fake.delivered if d.mailbox == user and d.stamp == message_id)

    async def send_fails_after_its_effect(self) -> None:
        self.fake.fail("send", "lost")

    async def send_throttled(self) -> None:
        self.fake.fail("send", "throttle")

    async def consent_without_mail_send(self) -> None:
        self.fake.fail("send", "denied")

    async def no_mailbox(self) -> str:
        user = await self.new_mailbox()
        self.fake.missing_mailboxes.add(user)
        return user


class EmulatorDriver:
    def __init__(self, graph: EmulatorGraph) -> None:
        self.graph = graph
        self.mail: MailGateway = GraphMail(graph.clients, graph.key_for)
        self.tenant = graph.tenant

    async def new_mailbox(self) -> str:
        return await self.graph.new_mailbox()

    async def copies(self, user: str, message_id: str) -> int:
        delivered = await self.graph.control.mail_deliveries(mailbox=user)
        stamped = [
            d for d in delivered if (d.get("extended_properties") or {}).get(MAIL_PROPERTY_ID) == message_id
        ]
        return len({d["recipient"] for d in stamped}) and len(stamped) // len(
            {d["recipient"] for d in stamped}
        )

    async def send_fails_after_its_effect(self) -> None:
        await self.graph.control.add_fault(status=503, path="/send$", method="POST", when="after", count=1)

    async def send_throttled(self) -> None:
        await self.graph.control.add_fault(status=429, retry_after=3, path="/send$", method="POST", count=1)

    async def consent_without_mail_send(self) -> None:
        permissions = ["Calendars.ReadWrite", "User.Read.All", "Mail.ReadWrite"]
        await self.graph.control.revoke_consent(self.tenant.directory_id, self.graph.client_id)
        await self.graph.control.consent(self.tenant.directory_id, self.graph.client_id, permissions)
        await self.graph.clients.forget(await self.graph.key_for(self.tenant))

    async def no_mailbox(self) -> str:
        return await self.graph.new_mailbox(mailbox_enabled=False)


@pytest.fixture(params=["fake", "emulator"])
async def driver(request: pytest.FixtureRequest) -> AsyncIterator[Driver]:
    if request.param == "fake":
        yield FakeDriver()
        return
    emulator = request.getfixturevalue("emulator")
    async with open_emulator_graph(emulator) as graph:
        try:
            yield EmulatorDriver(graph)
        finally:
            await graph.control.clear_faults()


def stamp() -> str:
    return f"m-{uuid.uuid4().hex[:10]}"


async def test_a_draft_is_found_by_its_stamp_sent_by_id_and_delivered_once(driver: Driver) -> None:
    user, message_id, mail, tenant = await driver.new_mailbox(), stamp(), driver.mail, driver.tenant
    assert await mail.find(tenant, user, message_id, MailFolder.DRAFTS) is None
    draft = await mail.create_draft(tenant, user, message_id, CONTENT, [LOGO])
    await mail.add_attachment(tenant, user, draft.id, LARGE)
    found = await mail.find(tenant, user, message_id, MailFolder.DRAFTS)
    assert found is not None and found.id == draft.id
    assert sorted(found.attachment_names) == ["logo.png", "plan.pdf"]
    assert await mail.find(tenant, user, stamp(), MailFolder.DRAFTS) is None  # another stamp: not this one
    await mail.send(tenant, user, draft.id)
    assert await mail.find(tenant, user, message_id, MailFolder.DRAFTS) is None
    sent = await mail.find(tenant, user, message_id, MailFolder.SENT_ITEMS)
    assert sent is not None and sent.internet_message_id
    if draft.internet_message_id:
        assert sent.internet_message_id == draft.internet_message_id
    assert await driver.copies(user, message_id) == 1
    with pytest.raises(DraftMissing):  # sent: no longer a draft, never sent twice
        await mail.send(tenant, user, draft.id)
    assert await driver.copies(user, message_id) == 1
    await mail.delete(tenant, user, sent.id)
    await mail.delete(tenant, user, sent.id)  # gone already is fine
    assert await mail.find(tenant, user, message_id, MailFolder.SENT_ITEMS) is None


async def test_a_send_answered_503_after_its_effect_is_uncertain_and_in_sent_items(driver: Driver) -> None:
    user, message_id, mail, tenant = await driver.new_mailbox(), stamp(), driver.mail, driver.tenant
    draft = await mail.create_draft(tenant, user, message_id, CONTENT, [])
    await driver.send_fails_after_its_effect()
    with pytest.raises(SendUncertain):
        await mail.send(tenant, user, draft.id)
    assert await mail.find(tenant, user, message_id, MailFolder.SENT_ITEMS) is not None
    assert await driver.copies(user, message_id) == 1


async def test_a_throttled_send_sends_nothing_and_leaves_the_draft(driver: Driver) -> None:
    user, message_id, mail, tenant = await driver.new_mailbox(), stamp(), driver.mail, driver.tenant
    draft = await mail.create_draft(tenant, user, message_id, CONTENT, [])
    await driver.send_throttled()
    with pytest.raises(RateLimited) as limited:
        await mail.send(tenant, user, draft.id)
    assert limited.value.retry_after >= 1
    assert await mail.find(tenant, user, message_id, MailFolder.DRAFTS) is not None
    assert await driver.copies(user, message_id) == 0


async def test_a_consent_without_mail_send_is_refused_as_such(driver: Driver) -> None:
    user, message_id, mail, tenant = await driver.new_mailbox(), stamp(), driver.mail, driver.tenant
    draft = await mail.create_draft(tenant, user, message_id, CONTENT, [])
    await driver.consent_without_mail_send()
    with pytest.raises(MailAccessDenied):
        await mail.send(tenant, user, draft.id)
    assert await driver.copies(user, message_id) == 0


async def test_a_user_without_a_mailbox_is_unavailable(driver: Driver) -> None:
    user = await driver.no_mailbox()
    with pytest.raises(MailboxUnavailable):
        await driver.mail.create_draft(driver.tenant, user, stamp(), CONTENT, [])
