"""Host to Outlook: the host's appointments as the connector stores them, and the writes to staff
calendars."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Protocol

from shared.domain.appointments import AppointmentRecord, EventDraft, Override
from shared.domain.tenants import Tenant
from shared.service.records import WrittenEvent


class AppointmentRepository(Protocol):
    """The host's appointments and their copies in staff calendars (table `appointments`)."""

    async def get(self, tenant_id: str, appointment_id: str) -> AppointmentRecord | None: ...
    async def save(self, record: AppointmentRecord) -> AppointmentRecord:
        """Insert when `etag` is None (AlreadyExists if taken), else replace guarded by it (StaleWrite)."""
        ...

    async def delete(self, record: AppointmentRecord) -> None:
        """Remove, guarded by `etag` (StaleWrite); gone already is fine."""
        ...

    async def unsettled(self, tenant_id: str, *, updated_before: datetime | None = None) -> list[str]:
        """Ids of the appointments whose latest revision has no reported outcome yet (and, with
        `updated_before`, whose row has not changed since)."""
        ...

    async def naming(self, tenant_id: str, staff_id: str) -> list[str]:
        """Ids of the appointments that name the staff member, or still hold a copy of theirs."""
        ...

    async def note_meeting(self, tenant_id: str, ical_uid: str, appointment_id: str) -> None:
        """Remember that the meeting with this iCalUId is the host's appointment (written as soon as its
        organiser's event is made, before Exchange delivers the invitations): an attendee's copy that a
        delta read brings before the write links it is the host's own, not a new event."""
        ...

    async def forget_meeting(self, tenant_id: str, ical_uid: str) -> None:
        """Once the organiser's event is deleted; gone already is fine."""
        ...

    async def meeting(self, tenant_id: str, ical_uid: str) -> str | None:
        """The host's appointment whose meeting has this iCalUId, if the connector organised it."""
        ...

    async def delete_tenant(self, tenant_id: str) -> None: ...


class CalendarWriter(Protocol):
    """Writes to one mailbox's calendar. Every method raises MailboxUnavailable, RateLimited and
    TenantAccessError like the `CalendarGateway`, and EventRejected for content Graph refuses."""

    async def create(
        self, tenant: Tenant, graph_user_id: str, draft: EventDraft, transaction_id: str
    ) -> WrittenEvent:
        """POST with `transactionId` (a retried create answers the event made the first time) and the
        connector's extended property."""
        ...

    async def update(
        self, tenant: Tenant, graph_user_id: str, event_id: str, draft: EventDraft, if_match: str | None
    ) -> WrittenEvent:
        """PATCH guarded by `if_match` (a change key): EventChanged when it does not hold, EventMissing."""
        ...

    async def delete(self, tenant: Tenant, graph_user_id: str, event_id: str) -> None:
        """Idempotent: gone already is fine."""
        ...

    async def read(self, tenant: Tenant, graph_user_id: str, event_id: str) -> WrittenEvent:
        """The event now (EventMissing when gone)."""
        ...

    async def occurrences(
        self, tenant: Tenant, graph_user_id: str, master_id: str, days: Sequence[date], time_zone: str
    ) -> dict[date, WrittenEvent]:
        """The series' occurrences and exceptions on these original local dates (in `time_zone`)."""
        ...

    async def update_occurrence(
        self, tenant: Tenant, graph_user_id: str, occurrence_id: str, draft: EventDraft, override: Override
    ) -> WrittenEvent:
        """Make one occurrence an exception (or change the exception): the override's times and texts."""
        ...

    async def find_by_ical_uid(
        self, tenant: Tenant, graph_user_id: str, ical_uid: str
    ) -> WrittenEvent | None:
        """The event of this mailbox with this iCalUId (an attendee's copy of a meeting), if any."""
        ...
