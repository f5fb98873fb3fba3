"""Standalone Teams meetings through Graph (`/users/{id}/onlineMeetings`), and the probe that finds a
user's Teams status without making anything the user would see."""

from __future__ import annotations

from datetime import date, datetime
from typing import Protocol

from shared.domain.teams import OnlineMeeting, TeamsAccess
from shared.domain.tenants import Tenant


class MeetingGateway(Protocol):
    """Every method raises TeamsRefused (no policy, no licence), MailboxUnavailable (no such user),
    RateLimited and TenantAccessError."""

    async def create_or_get(
        self,
        tenant: Tenant,
        organizer_id: str,
        *,
        external_id: str,
        subject: str,
        start: datetime | date,
        end: datetime | date,
    ) -> OnlineMeeting:
        """`createOrGet` with `external_id`: a retry answers the meeting made the first time."""
        ...

    async def move(
        self, tenant: Tenant, organizer_id: str, meeting_id: str, start: datetime | date, end: datetime | date
    ) -> None:
        """PATCH the meeting's times (the join URL stays)."""
        ...

    async def delete(self, tenant: Tenant, organizer_id: str, meeting_id: str) -> None:
        """Idempotent: gone already is fine."""
        ...

    async def probe(self, tenant: Tenant, user_id: str) -> TeamsAccess:
        """Whether the app may make meetings for this user: a filtered read of their meetings (nothing is
        created; Teams applies the same access policy to reads as to creates)."""
        ...
