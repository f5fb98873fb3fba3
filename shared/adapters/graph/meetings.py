"""Standalone Teams meetings through Graph (`MeetingGateway`, contract §7).

`POST /users/{id}/onlineMeetings/createOrGet` with the appointment id as `externalId` (a retry answers the
meeting made the first time), `PATCH` for a time change, `DELETE`; the probe is a filtered read of the
user's meetings (`$filter=JoinWebUrl eq '…'`), which Teams refuses with 403 "No application access policy
found for this app." exactly as it refuses a create, and which makes nothing. Times go as UTC instants.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any, Final
from urllib.parse import quote

from shared.adapters.graph.calendar import GraphPort, user_path
from shared.adapters.graph.errors import AccessDenied, GraphError, GraphNotFound
from shared.domain.teams import MATCHED_ACCESS, NO_LICENCE, NO_POLICY, OnlineMeeting, TeamsAccess, TeamsStatus
from shared.domain.tenants import Tenant
from shared.service.errors import MailboxUnavailable, TeamsRefused

# A join URL no meeting has: the probe's filter finds nothing, or Teams refuses the app for the user.
PROBE_URL: Final = "https://teams.microsoft.com/l/meetup-join/19%3ameeting_probe%40thread.v2/0"


def _instant(value: datetime | date) -> str:
    if not isinstance(value, datetime):
        value = datetime.combine(value, time(), tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def refusal(error: GraphError) -> str:
    """Why Teams refused the app, in words an admin can act on."""
    message = error.message.lower()
    if "application access policy" in message:
        return f"{NO_POLICY} (Teams: {error.message})"
    if "licen" in message:
        return f"{NO_LICENCE} (Teams: {error.message})"
    return f"Teams refused the app ({error.code}: {error.message})"


def meeting_of(raw: dict[str, Any]) -> OnlineMeeting:
    """The join details of an onlineMeeting: its join URL, the conference id (`joinMeetingIdSettings`, or
    `audioConferencing` where the organiser has dial-in) and the toll number."""
    audio = raw.get("audioConferencing") or {}
    settings = raw.get("joinMeetingIdSettings") or {}
    return OnlineMeeting(
        join_url=str(raw.get("joinWebUrl") or raw.get("joinUrl") or ""),
        meeting_id=str(raw["id"]),
        conference_id=audio.get("conferenceId") or settings.get("joinMeetingId") or None,
        toll_number=audio.get("tollNumber") or None,
    )


class GraphMeetings(GraphPort):
    """`MeetingGateway` over Graph."""

    async def _send(self, tenant: Tenant, method: str, url: str, organizer_id: str, body: Any = None) -> Any:
        graph = await self._graph(tenant)
        try:
            return await graph.request_json(method, url, body)
        except AccessDenied as error:
            raise TeamsRefused(refusal(error)) from error
        except GraphError as error:
            raise await self._translated(graph, error, organizer_id) from error

    def _meetings(self, organizer_id: str, meeting_id: str | None = None) -> str:
        base = f"{user_path(organizer_id)}/onlineMeetings"
        return f"{base}/{quote(meeting_id, safe='')}" if meeting_id else base

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
        body = {
            "externalId": external_id,
            "subject": subject,
            "startDateTime": _instant(start),
            "endDateTime": _instant(end),
        }
        url = f"{self._meetings(organizer_id)}/createOrGet"
        return meeting_of(await self._send(tenant, "POST", url, organizer_id, body))

    async def move(
        self, tenant: Tenant, organizer_id: str, meeting_id: str, start: datetime | date, end: datetime | date
    ) -> None:
        body = {"startDateTime": _instant(start), "endDateTime": _instant(end)}
        await self._send(tenant, "PATCH", self._meetings(organizer_id, meeting_id), organizer_id, body)

    async def delete(self, tenant: Tenant, organizer_id: str, meeting_id: str) -> None:
        graph = await self._graph(tenant)
        try:
            await graph.request_json("DELETE", self._meetings(organizer_id, meeting_id))
        except GraphNotFound:
            return  # gone already
        except AccessDenied as error:
            raise TeamsRefused(refusal(error)) from error
        except GraphError as error:
            raise await self._translated(graph, error, organizer_id) from error

    async def probe(self, tenant: Tenant, user_id: str) -> TeamsAccess:
        condition = quote(f"JoinWebUrl eq '{PROBE_URL}'", safe="")
        try:
            await self._send(tenant, "GET", f"{self._meetings(user_id)}?$filter={condition}", user_id)
        except TeamsRefused as refused:
            return TeamsAccess(TeamsStatus.FORBIDDEN, refused.reason)
        except MailboxUnavailable as error:
            if "knows no user" in error.reason:
                return TeamsAccess(TeamsStatus.UNMATCHED, error.reason)
            return MATCHED_ACCESS  # the filter found no meeting (a 404 of the collection)
        return MATCHED_ACCESS
