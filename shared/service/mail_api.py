"""Host API: mail sent from a staff member's mailbox (PUT, GET).

The host's message id is the idempotency key: the PUT stores the content (Blob Storage, until sent or
failed), the message's row (no text, no addresses) and queues the send job (`mail_send.py`), then answers
at once. The same PUT again answers the message as it stands (and queues its job again while it is not
sent, in case the first PUT died before queueing); a PUT with other content under the same id is a 409.
"""

from __future__ import annotations

from typing import Final, Protocol

from shared.domain.mail import MailRecord, MailState, OutgoingMail
from shared.service import jobs
from shared.service.context import UsesClock, UsesJobs, UsesMail, UsesMailContent, UsesUsers
from shared.service.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from shared.service.tenants import TenantPorts, get_tenant

SAVE_ATTEMPTS: Final = 3
DIFFERENT: Final = (
    "a message with this id was accepted with other content; each message needs its own id (the id is the "
    "idempotency key)"
)


class MailReadPorts(TenantPorts, UsesMail, Protocol):
    """GET: the tenant, then the message's row."""


class MailPutPorts(MailReadPorts, UsesUsers, UsesMailContent, UsesJobs, UsesClock, Protocol):
    """PUT: the sender is known, the content stored, the job queued."""


async def put_mail(services: MailPutPorts, tenant_id: str, mail: OutgoingMail) -> tuple[MailRecord, bool]:
    """The message as accepted, and whether this PUT accepted it (False: the same PUT again)."""
    tenant = await get_tenant(services, tenant_id)
    if not tenant.state.connected:
        raise Conflict("tenant_id", f"the tenant is {tenant.state.value}; mail needs a connected tenant")
    fingerprint = mail.fingerprint()
    existing = await services.mail.get(tenant.tenant_id, mail.message_id)
    if existing is not None:
        return await _again(services, existing, fingerprint), False
    user = await services.users.get(tenant.tenant_id, mail.from_staff_id)
    if user is None:
        raise InvalidInput("from_staff_id", "no such staff member (PUT the staff member first)", status=422)
    if not user.staff.enabled:
        raise InvalidInput("from_staff_id", "the staff member is disabled", status=422)
    now = services.clock.now()
    record = MailRecord(
        tenant_id=tenant.tenant_id,
        message_id=mail.message_id,
        fingerprint=fingerprint,
        staff_id=mail.from_staff_id,
        recipients=mail.content.recipient_count,
        save_to_sent_items=mail.save_to_sent_items,
        state=MailState.QUEUED,
        created_at=now,
        updated_at=now,
    )
    await services.mail_content.put(tenant.tenant_id, mail.message_id, mail.content)  # before the row
    try:
        record = await services.mail.save(record)
    except AlreadyExists:  # the same id PUT at the same moment
        raced = await services.mail.get(tenant.tenant_id, mail.message_id)
        assert raced is not None
        return await _again(services, raced, fingerprint), False
    await services.jobs.enqueue([jobs.send_mail(tenant.tenant_id, mail.message_id)])
    return record, True


async def get_mail(services: MailReadPorts, tenant_id: str, message_id: str) -> MailRecord:
    await get_tenant(services, tenant_id)
    record = await services.mail.get(tenant_id, message_id)
    if record is None:
        raise NotFound("message", message_id, "message_id")
    return record


async def _again(services: MailPutPorts, record: MailRecord, fingerprint: str) -> MailRecord:
    if record.fingerprint != fingerprint:
        raise Conflict("message_id", DIFFERENT)
    if not record.state.final:  # the first PUT may have died before queueing its job
        await services.jobs.enqueue([jobs.send_mail(record.tenant_id, record.message_id)])
    return record
