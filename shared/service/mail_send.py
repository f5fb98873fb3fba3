"""The send job: the host's message sent from the staff member's mailbox, exactly once.

Graph's `sendMail` has no idempotency key, and a 5xx or a timeout can come after the message left. So the
job never calls it: under a lease per message (one attempt at a time across workers) it
1. counts the attempt in the message's row before any Graph request (a first attempt knows nothing exists);
2. after an earlier attempt, looks up the connector's extended property (the host's message id) in Drafts,
   and once a send was requested, in Sent Items and Outbox first;
3. creates the draft stamped with that property (small attachments in the same request) or reuses the one
   found, and adds what attachments it lacks (large ones through upload sessions);
4. records `sending` with the draft's id and the time of the send request, then sends the draft by its id
   (no retries inside the call);
5. records `sent` (the `internetMessageId` from the draft, or from the Sent Items copy).
After an uncertain send (5xx, timeout) the draft is not sent again until a look-up finds it in neither Sent
Items nor Outbox and `SEND_SETTLE` has passed since the request (Exchange moves a sent draft
asynchronously). DESIGN.md ("Mail") lists each failure case.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Final, Protocol

from shared.domain.mail import MailAttachment, MailRecord, MailState
from shared.domain.tenants import Tenant, TenantState
from shared.domain.users import MatchStatus, UserRecord
from shared.observability import bound, get_logger
from shared.service import limits, monitor
from shared.service.context import (
    UsesJobs,
    UsesLeases,
    UsesMail,
    UsesMailContent,
    UsesMailGateway,
    UsesMessages,
    UsesUsers,
)
from shared.service.errors import (
    DraftMissing,
    MailAccessDenied,
    MailboxUnavailable,
    MailRejected,
    RateLimited,
    SendUncertain,
    TenantAccessError,
)
from shared.service.jobs import SendMail
from shared.service.leasing import check_back, run_leased
from shared.service.monitor import Direction, MessageStatus, PushKind
from shared.service.ports.mail import MailFolder, MailItem
from shared.service.publishing import publish
from shared.service.records import Change
from shared.service.retries import THROTTLED
from shared.service.tenants import TenantEventPorts, mark_consent_revoked

log = get_logger("mail")

LEASE_TTL: Final = timedelta(minutes=5)  # large attachments' uploads take a while
# How long after a send request whose outcome is unknown a draft still in Drafts is taken as not sent.
# Exchange moves a sent draft to Outbox, then Sent Items, asynchronously: seconds, rarely a minute.
SEND_SETTLE: Final = timedelta(minutes=2)
OUTBOX_RECHECK: Final = timedelta(seconds=30)  # a message in Outbox is on its way: look again
# After an uncertain send, the first look: a send that took effect is usually in Sent Items by then.
UNCERTAIN_RECHECK: Final = timedelta(seconds=5)
REAUTHORIZE: Final = (
    "Microsoft Graph refused the sender's mailbox ({detail}): the tenant's consent lacks Mail.Send or "
    "Mail.ReadWrite (or an access policy leaves the mailbox out); an administrator must reauthorize the "
    "tenant (POST /tenants/{{tid}}/reauthorize) to grant them"
)


class SendMailPorts(
    TenantEventPorts,
    UsesUsers,
    UsesMail,
    UsesMailContent,
    UsesMailGateway,
    UsesJobs,
    UsesLeases,
    UsesMessages,
    Protocol,
):
    """The send job: the message's row and content, the sender, Graph's mailbox, the feed."""


class _Retry(Exception):
    """Leave the attempt and queue the job again after `after`."""

    def __init__(self, after: timedelta, reason: str | None = None) -> None:
        super().__init__(reason or "retry")
        self.after = after
        self.reason = reason


class _Failed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def run_send_job(services: SendMailPorts, job: SendMail) -> None:
    """A job from the `outlook-writes` queue. Never raises for a condition a retry cannot fix."""

    async def attempt(number: int) -> None:
        if number == 0:  # a later pass was asked for by a duplicate of this job: this one covered it
            await _attempt(services, job)

    with bound(tenant=job.tenant_id, message=job.message_id):
        key = f"{job.tenant_id}/mail/{job.message_id}"
        if not await run_leased(services.leases, services.clock, key, LEASE_TTL, attempt):
            await check_back(services.jobs, job, LEASE_TTL)


async def _attempt(services: SendMailPorts, job: SendMail) -> None:
    record = await services.mail.get(job.tenant_id, job.message_id)
    if record is None:
        log.info("no such message (purged); dropped")
        return
    ready = await _ready(services, record)
    if ready is None:
        return
    tenant, graph_user_id = ready
    first = record.attempts == 0 and record.state is MailState.QUEUED
    now = services.clock.now()
    record = await services.mail.save(
        replace(record, attempts=record.attempts + 1, graph_user_id=graph_user_id, updated_at=now)
    )
    attempt = _Attempt(services, tenant, graph_user_id, record)
    try:
        if record.state is MailState.SENDING:
            await attempt.settle()
        else:
            await attempt.prepare_and_send(look_up=not first)
    except RateLimited as error:
        delay = THROTTLED.delay_after(job.attempt + 1, error.retry_after)
        await attempt.note(f"throttled ({error.reason}); trying again in {delay} s")
        await _again(services, job, timedelta(seconds=delay))
        await _monitor(services, attempt.record, MessageStatus.RETRYING)
    except _Retry as retry:
        if retry.reason:
            await attempt.note(retry.reason)
        await _again(services, job, retry.after)
        await _monitor(services, attempt.record, MessageStatus.RETRYING)
    except _Failed as failed:
        await attempt.discard_draft()
        await _fail(services, attempt.record, failed.reason)
    except MailAccessDenied as error:
        await _fail(services, attempt.record, REAUTHORIZE.format(detail=error.reason))
    except (MailboxUnavailable, MailRejected) as error:
        await _fail(services, attempt.record, error.reason)
    except TenantAccessError as error:
        await mark_consent_revoked(services, tenant.tenant_id, error.reason)
        await _fail(services, attempt.record, f"{error.reason}; reauthorize the tenant")


async def _ready(services: SendMailPorts, record: MailRecord) -> tuple[Tenant, str] | None:
    """The tenant and the sender's Graph id when the message may be sent; else None, having failed it (or
    tidied a sent one)."""
    if record.state is MailState.FAILED:
        return None
    tenant = await services.tenants.get(record.tenant_id)
    connected = tenant is not None and tenant.state.connected
    if record.state is MailState.SENT:
        if tenant is not None and connected and record.graph_user_id:
            await _remove_sent_copy(services, tenant, record)
        return None
    if tenant is None or not connected:
        await _fail(services, record, _tenant_problem(tenant))
        return None
    user = await services.users.get(tenant.tenant_id, record.staff_id)
    problem = _sender_problem(user)
    if problem is not None or user is None or user.graph_user_id is None:
        await _fail(services, record, problem or "the staff member has no mailbox")
        return None
    return tenant, user.graph_user_id


class _Attempt:
    """One attempt on one message, its row kept current as it saves."""

    def __init__(
        self, services: SendMailPorts, tenant: Tenant, graph_user_id: str, record: MailRecord
    ) -> None:
        self.services = services
        self.tenant = tenant
        self.user = graph_user_id
        self.record = record

    async def save(self, record: MailRecord) -> MailRecord:
        self.record = await self.services.mail.save(replace(record, updated_at=self.services.clock.now()))
        return self.record

    async def note(self, error: str) -> None:
        """Why the message is still on its way (shown by GET until it is sent)."""
        await self.save(replace(self.record, error=error))

    async def discard_draft(self) -> None:
        """A message that fails leaves no draft behind that someone could send later (best effort)."""
        try:
            draft = await self.find(MailFolder.DRAFTS)
            if draft is not None:
                await self.services.mail_gateway.delete(self.tenant, self.user, draft.id)
        except (RateLimited, SendUncertain, MailAccessDenied, MailboxUnavailable, MailRejected) as error:
            log.warning("the failed message's draft was left in Drafts: %s", error)

    async def find(self, folder: MailFolder) -> MailItem | None:
        return await self.services.mail_gateway.find(self.tenant, self.user, self.record.message_id, folder)

    async def prepare_and_send(self, *, look_up: bool) -> None:
        """The draft (found, or made), its attachments complete, then one send."""
        gateway = self.services.mail_gateway
        self._check_deadline()
        content = await self.services.mail_content.get(self.record.tenant_id, self.record.message_id)
        if content is None:
            raise _Failed("the message's content was lost before it was sent; PUT it under a new message id")
        draft = await self.find(MailFolder.DRAFTS) if look_up else None
        inline, later = split_attachments(content.attachments)
        if draft is None:
            draft = await gateway.create_draft(
                self.tenant, self.user, self.record.message_id, content, inline
            )
            present = Counter(a.name for a in inline)
        else:
            present = Counter(draft.attachment_names)
            later = list(content.attachments)
        for attachment in later:
            if present[attachment.name] > 0:
                present[attachment.name] -= 1
                continue
            await gateway.add_attachment(self.tenant, self.user, draft.id, attachment)
        await self._send(draft)

    async def settle(self) -> None:
        """An earlier attempt recorded `sending`: find out where the message is before anything else."""
        sent = await self.find(MailFolder.SENT_ITEMS)
        if sent is not None:
            await self._record_sent(sent.internet_message_id)
            return
        if await self.find(MailFolder.OUTBOX) is not None:
            raise _Retry(OUTBOX_RECHECK, "in the sender's Outbox; Exchange is sending it")
        draft = await self.find(MailFolder.DRAFTS)
        requested = self.record.send_requested_at
        now = self.services.clock.now()
        if requested is not None and now < requested + SEND_SETTLE:
            raise _Retry(requested + SEND_SETTLE - now)  # Exchange may still be moving it
        if draft is None:
            if requested is None:  # the draft went before any send: make it again
                await self.prepare_and_send(look_up=False)
                return
            raise _Failed(
                "a send was requested but the message is in neither Sent Items, Outbox nor Drafts; it "
                "was not sent again because it may have left (check the sender's mailbox)"
            )
        self._check_deadline()
        await self._send(draft)

    async def _send(self, draft: MailItem) -> None:
        now = self.services.clock.now()
        record = await self.save(
            replace(self.record, state=MailState.SENDING, draft_id=draft.id, send_requested_at=now)
        )
        try:
            await self.services.mail_gateway.send(self.tenant, self.user, draft.id)
        except RateLimited:
            await self.save(replace(record, send_requested_at=None))  # a 429 was not processed
            raise
        except (SendUncertain, DraftMissing) as error:
            reason = getattr(error, "reason", "the draft was gone")
            raise _Retry(UNCERTAIN_RECHECK, f"the send's outcome is unknown ({reason}); checking") from error
        await self._record_sent(draft.internet_message_id)

    async def _record_sent(self, internet_message_id: str | None) -> None:
        sent_copy = None
        if internet_message_id is None or not self.record.save_to_sent_items:
            sent_copy = await self.find(MailFolder.SENT_ITEMS)
            if sent_copy is not None:
                internet_message_id = sent_copy.internet_message_id
        now = self.services.clock.now()
        record = replace(
            self.record,
            state=MailState.SENT,
            sent_at=now,
            internet_message_id=internet_message_id,
            error=None,
        )
        await publish(self.services, record.tenant_id, [sent_change(record, now)])  # before the save
        await self.save(record)
        await self.services.mail_content.delete(record.tenant_id, record.message_id)
        await _monitor(self.services, record, MessageStatus.OK)
        log.info("sent after %d attempt(s)", record.attempts)
        if not record.save_to_sent_items:
            await _remove_sent_copy(self.services, self.tenant, self.record, sent_copy)

    def _check_deadline(self) -> None:
        hours = self.tenant.settings.mail_deadline_hours
        if self.services.clock.now() >= self.record.created_at + timedelta(hours=hours):
            last = f" (last: {self.record.error})" if self.record.error else ""
            raise _Failed(f"not sent within {hours} hours (the tenant's mail_deadline_hours){last}")


def split_attachments(
    attachments: Sequence[MailAttachment],
) -> tuple[list[MailAttachment], list[MailAttachment]]:
    """Which attachments go in the draft's POST (small ones, while the request stays under Graph's 4 MB) and
    which are added afterwards (through upload sessions when large)."""
    inline: list[MailAttachment] = []
    later: list[MailAttachment] = []
    budget = limits.INLINE_BUDGET_BYTES
    for attachment in attachments:
        if attachment.size < limits.INLINE_ATTACHMENT_BYTES and attachment.size <= budget:
            inline.append(attachment)
            budget -= attachment.size
        else:
            later.append(attachment)
    return inline, later


async def _remove_sent_copy(
    services: SendMailPorts, tenant: Tenant, record: MailRecord, found: MailItem | None = None
) -> None:
    """save_to_sent_items=false: delete the Sent Items copy once the message is recorded sent. Exchange may
    file it a little later; the job looks again then."""
    if record.save_to_sent_items or record.sent_copy_removed or record.graph_user_id is None:
        return
    gateway = services.mail_gateway
    try:
        user, message_id = record.graph_user_id, record.message_id
        copy = found or await gateway.find(tenant, user, message_id, MailFolder.SENT_ITEMS)
        if copy is None:
            if services.clock.now() - (record.sent_at or record.updated_at) < SEND_SETTLE * 5:
                await services.jobs.enqueue([SendMail(record.tenant_id, record.message_id, delay_seconds=30)])
            return
        await gateway.delete(tenant, record.graph_user_id, copy.id)
    except (RateLimited, SendUncertain):
        await services.jobs.enqueue([SendMail(record.tenant_id, record.message_id, delay_seconds=60)])
        return
    except (MailAccessDenied, MailboxUnavailable, TenantAccessError) as error:
        log.warning("the Sent Items copy could not be removed: %s", error)
    current = await services.mail.get(record.tenant_id, record.message_id)
    if current is not None:
        await services.mail.save(replace(current, sent_copy_removed=True))


async def _again(services: SendMailPorts, job: SendMail, after: timedelta) -> None:
    delay = max(1, int(after.total_seconds() + 0.999))
    await services.jobs.enqueue([replace(job, attempt=job.attempt + 1, check_back=0, delay_seconds=delay)])


async def _fail(services: SendMailPorts, record: MailRecord, reason: str) -> None:
    """`failed` with the reason, on the feed first; the content goes."""
    now = services.clock.now()
    failed = replace(record, state=MailState.FAILED, error=reason, updated_at=now)
    await publish(services, record.tenant_id, [failed_change(failed, now)])
    await services.mail.save(failed)
    await services.mail_content.delete(record.tenant_id, record.message_id)
    await _monitor(services, failed, MessageStatus.FAILED)
    log.warning("failed after %d attempt(s): %s", record.attempts, reason)


async def _monitor(services: SendMailPorts, mail: MailRecord, status: MessageStatus) -> None:
    """The attempt in the message monitor: a `push` of kind `mail`, keyed by the host's message id."""
    entry = monitor.message(
        mail.tenant_id,
        Direction.PUSH,
        PushKind.MAIL,
        status,
        mail.message_id,
        started_at=mail.created_at,
        at=services.clock.now(),
        staff_id=mail.staff_id,
        attempts=max(mail.attempts, 1),
        graph_user_id=mail.graph_user_id,
        draft_id=mail.draft_id,
        internet_message_id=mail.internet_message_id,
        state=mail.state.value,
        error=mail.error,
    )
    await monitor.record(services.messages, [entry])


def _tenant_problem(tenant: Tenant | None) -> str:
    if tenant is None or tenant.state in (TenantState.DISCONNECTING, TenantState.DISCONNECTED):
        return "the tenant was disconnected before the message was sent"
    if tenant.state is TenantState.CONSENT_REVOKED:
        return "the tenant's consent was revoked; an administrator must reauthorize the tenant"
    return f"the tenant is {tenant.state.value}; mail needs a connected tenant"


_MATCH_PROBLEMS: Final = {
    MatchStatus.UNMATCHED: "the staff member matches no user of the organisation; fix their upn or email",
    MatchStatus.FORBIDDEN: (
        "an access policy keeps the app out of the staff member's mailbox; add them to the policy's group"
    ),
    MatchStatus.NO_MAILBOX: "the staff member has no Exchange Online mailbox; give them one",
    MatchStatus.DISABLED: "the staff member's account is disabled",
    MatchStatus.PENDING: "the staff member is not matched yet; try again once they are",
}


def _sender_problem(user: UserRecord | None) -> str | None:
    if user is None:
        return "the staff member was removed before the message was sent"
    if not user.staff.enabled:
        return "the staff member is disabled"
    if user.match is not MatchStatus.MATCHED:
        return _MATCH_PROBLEMS[user.match]
    if not user.staff.switches.mail:
        return "mail is switched off for this staff member; turn on switches.mail on the staff PUT"
    return None


def sent_change(record: MailRecord, at: datetime) -> Change:
    data = {
        "message_id": record.message_id,
        "staff_id": record.staff_id,
        "internet_message_id": record.internet_message_id,
        "sent_at": at.isoformat().replace("+00:00", "Z"),
        "attempts": record.attempts,
    }
    return Change("mail.sent", record.tenant_id, data, at, staff_id=record.staff_id)


def failed_change(record: MailRecord, at: datetime) -> Change:
    data = {
        "message_id": record.message_id,
        "staff_id": record.staff_id,
        "reason": record.error or "",
        "attempts": record.attempts,
    }
    return Change("mail.failed", record.tenant_id, data, at, staff_id=record.staff_id)
