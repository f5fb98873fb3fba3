"""`MeetingGateway` with Teams' contract: `createOrGet` answers the meeting made the first time for the same
organiser and externalId; every call for a user the application access policy does not cover is refused
(`TeamsRefused`), the probe included; a user Graph does not know is `MailboxUnavailable`."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from datetime import date, datetime

from shared.domain.teams import MATCHED_ACCESS, NO_POLICY, OnlineMeeting, TeamsAccess, TeamsStatus
from shared.domain.tenants import Tenant
from shared.service.errors import MailboxUnavailable, TeamsRefused

_ids = itertools.count(1)


@dataclass
class FakeMeeting:
    organizer_id: str
    external_id: str
    subject: str
    start: datetime | date
    end: datetime | date
    meeting: OnlineMeeting


class FakeMeetings:
    def __init__(self) -> None:
        self.users: set[str] = set()  # Graph users that exist (empty: every id exists)
        self.allowed: set[str] = set()  # users the access policy covers
        self.global_policy = True  # the tenant-wide grant (`Grant-CsApplicationAccessPolicy -Global`)
        self.meetings: dict[str, FakeMeeting] = {}  # meeting id -> meeting
        self.requests = 0

    def _check(self, user_id: str) -> None:
        self.requests += 1
        if self.users and user_id not in self.users:
            raise MailboxUnavailable(f"Graph knows no user {user_id}")
        if not (self.global_policy or user_id in self.allowed):
            raise TeamsRefused(f"{NO_POLICY} (Teams: No application access policy found for this app.)")

    def revoke_all(self, *, except_for: set[str] | None = None) -> None:
        self.global_policy = False
        self.allowed = set(except_for or ())

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
        self._check(organizer_id)
        for held in self.meetings.values():
            if (held.organizer_id, held.external_id) == (organizer_id, external_id):
                return held.meeting
        number = next(_ids)
        meeting = OnlineMeeting(
            join_url=f"https://teams.example/l/meetup-join/{number}",
            meeting_id=f"mtg-{number}",
            conference_id=f"{100000000 + number}",
            toll_number="+1 425 555 0123",
        )
        assert meeting.meeting_id is not None
        self.meetings[meeting.meeting_id] = FakeMeeting(
            organizer_id, external_id, subject, start, end, meeting
        )
        return meeting

    async def move(
        self, tenant: Tenant, organizer_id: str, meeting_id: str, start: datetime | date, end: datetime | date
    ) -> None:
        self._check(organizer_id)
        held = self.meetings.get(meeting_id)
        if held is None or held.organizer_id != organizer_id:
            raise MailboxUnavailable(f"no meeting {meeting_id}")
        self.meetings[meeting_id] = replace(held, start=start, end=end)

    async def delete(self, tenant: Tenant, organizer_id: str, meeting_id: str) -> None:
        self._check(organizer_id)
        held = self.meetings.get(meeting_id)
        if held is not None and held.organizer_id == organizer_id:
            del self.meetings[meeting_id]

    async def probe(self, tenant: Tenant, user_id: str) -> TeamsAccess:
        try:
            self._check(user_id)
        except TeamsRefused as refused:
            return TeamsAccess(TeamsStatus.FORBIDDEN, refused.reason)
        except MailboxUnavailable as missing:
            return TeamsAccess(TeamsStatus.UNMATCHED, missing.reason)
        return MATCHED_ACCESS
