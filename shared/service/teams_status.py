"""Each staff member's Teams status (`matched`, `unmatched`, `forbidden` with the reason), found with
their match (a staff PUT, discovery, rematch, reauthorize) and without making anything they would see.

- `event`: the meeting is an event in their own calendar, so the mailbox decides: matched with a mailbox
  is `matched`; no mailbox or an Exchange access policy is `forbidden`.
- `access_policy`: the staff member organises the meeting, so Teams decides: a filtered read of their
  meetings (`MeetingGateway.probe`) is refused exactly when a create would be (no application access
  policy for this app, no licence).
- `service_account`: the organiser account makes every meeting, so its probe decides for everyone matched.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Final, Protocol

from shared.domain.teams import MATCHED_ACCESS, NO_MAILBOX, TeamsAccess, TeamsStatus
from shared.domain.tenants import TeamsMethod, Tenant
from shared.domain.users import Match, MatchStatus
from shared.service.context import UsesDirectory, UsesMeetings
from shared.service.errors import RateLimited
from shared.service.teams_meetings import organiser_id, organiser_problem

PROBES_AT_ONCE: Final = 8


class TeamsStatusPorts(UsesMeetings, UsesDirectory, Protocol):
    """The probe, and the directory that finds the organiser account."""


async def with_teams(services: TeamsStatusPorts, tenant: Tenant, matches: Sequence[Match]) -> list[Match]:
    """The matches, each with its staff member's Teams status."""
    method = tenant.settings.teams_method
    organiser: TeamsAccess | None = None
    if method is TeamsMethod.SERVICE_ACCOUNT and any(_matched(m) for m in matches):
        organiser = await _organiser_access(services, tenant)
    gate = asyncio.Semaphore(PROBES_AT_ONCE)

    async def one(match: Match) -> Match:
        if not _matched(match):
            return _without_mailbox(match)
        if method is TeamsMethod.EVENT:
            return _with(match, MATCHED_ACCESS)
        if organiser is not None:
            return _with(match, organiser)
        assert match.user is not None
        async with gate:
            return _with(match, await _probe(services, tenant, match.user.id))

    return list(await asyncio.gather(*(one(m) for m in matches)))


def _matched(match: Match) -> bool:
    return match.status is MatchStatus.MATCHED and match.user is not None


def _with(match: Match, access: TeamsAccess | None) -> Match:
    return Match(match.status, match.user, match.matched_by, match.reason, access)


def _without_mailbox(match: Match) -> Match:
    if match.status is MatchStatus.NO_MAILBOX:
        return _with(match, TeamsAccess(TeamsStatus.FORBIDDEN, NO_MAILBOX))
    if match.status is MatchStatus.FORBIDDEN:
        return _with(match, TeamsAccess(TeamsStatus.FORBIDDEN, match.reason))
    return _with(
        match, TeamsAccess(TeamsStatus.UNMATCHED, match.reason or f"the staff member is {match.status}")
    )


async def _probe(services: TeamsStatusPorts, tenant: Tenant, user_id: str) -> TeamsAccess | None:
    try:
        return await services.meetings.probe(tenant, user_id)
    except RateLimited:
        return None  # left as it was: the next rematch looks again


async def _organiser_access(services: TeamsStatusPorts, tenant: Tenant) -> TeamsAccess | None:
    user_id = await organiser_id(services.directory, tenant)
    if user_id is None:
        return TeamsAccess(TeamsStatus.FORBIDDEN, organiser_problem(tenant))
    access = await _probe(services, tenant, user_id)
    if access is None or access.status is TeamsStatus.MATCHED:
        return access
    return TeamsAccess(
        TeamsStatus.FORBIDDEN, f"the Teams organiser {tenant.settings.teams_organizer}: {access.reason}"
    )
