"""Teams meetings for video appointments: one meeting per appointment, made one of three ways, and each
staff member's Teams status.

Pure: no I/O. The tenant's `TeamsMethod` decides how a new meeting is made:
- `event`: the first writable staff member's calendar event is the Teams meeting (`isOnlineMeeting`,
  Calendars.ReadWrite only); its join details are copied into every other copy;
- `access_policy`: a standalone meeting (`onlineMeetings/createOrGet`, externalId = the appointment id)
  organised by the first staff member the tenant's application access policy covers;
- `service_account`: the same, organised by the tenant's `teams_organizer` mailbox (a participant of
  every meeting).
A meeting once made keeps its method: a later change of the tenant's method leaves it as it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from shared.domain.tenants import TeamsMethod


class TeamsStatus(StrEnum):
    MATCHED = "matched"  # the connector can give this staff member's appointments a Teams meeting
    UNMATCHED = "unmatched"  # no directory user (or not looked up yet)
    FORBIDDEN = "forbidden"  # matched, but Teams refuses the app for them: the reason says why


NO_POLICY = "no application access policy for this app covers the user"
NO_LICENCE = "the user has no Teams licence"
NO_MAILBOX = "the user has no Exchange Online mailbox"


@dataclass(frozen=True, slots=True)
class TeamsAccess:
    """What Teams answered for one user: the status and, unless matched, why."""

    status: TeamsStatus
    reason: str | None = None


MATCHED_ACCESS = TeamsAccess(TeamsStatus.MATCHED)


@dataclass(frozen=True, slots=True)
class OnlineMeeting:
    """A meeting as Teams answered it (a standalone meeting, or an event's `onlineMeeting`)."""

    join_url: str
    meeting_id: str | None = None  # the standalone meeting's id; None for an event's meeting
    conference_id: str | None = None
    toll_number: str | None = None


@dataclass(frozen=True, slots=True)
class TeamsMeeting:
    """An appointment's one Teams meeting, as stored with it."""

    method: TeamsMethod
    join_url: str
    conference_id: str | None = None
    toll_number: str | None = None
    meeting_id: str | None = None  # standalone: the onlineMeeting id
    organizer_user_id: str | None = None  # standalone: whose onlineMeetings it is under (object id)
    holder_staff_id: str | None = None  # event: the staff member whose event is the meeting
    start: datetime | date | None = None  # standalone: the times it was last given
    end: datetime | date | None = None

    @property
    def standalone(self) -> bool:
        return self.method is not TeamsMethod.EVENT

    @classmethod
    def made(
        cls,
        method: TeamsMethod,
        meeting: OnlineMeeting,
        *,
        organizer: str | None = None,
        holder: str | None = None,
        times: tuple[datetime | date, datetime | date] | None = None,
    ) -> TeamsMeeting:
        return cls(
            method=method,
            join_url=meeting.join_url,
            conference_id=meeting.conference_id,
            toll_number=meeting.toll_number,
            meeting_id=meeting.meeting_id,
            organizer_user_id=organizer,
            holder_staff_id=holder,
            start=times[0] if times else None,
            end=times[1] if times else None,
        )


def join_text(meeting: TeamsMeeting, body_type: str) -> str:
    """The join details a copy carries in its body (every copy but the event that is the meeting)."""
    lines = [("Join the Microsoft Teams meeting", meeting.join_url)]
    if meeting.conference_id:
        lines.append(("Conference ID", meeting.conference_id))
    if meeting.toll_number:
        lines.append(("Dial-in", meeting.toll_number))
    if body_type == "html":
        items = "".join(
            f'<p>{label}: <a href="{_escape(value)}">{_escape(value)}</a></p>'
            if value.startswith("https://")
            else f"<p>{label}: {_escape(value)}</p>"
            for label, value in lines
        )
        return f"<hr/>{items}"
    return "\n\n" + "\n".join(f"{label}: {value}" for label, value in lines)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


TEAMS_LOCATION = "Microsoft Teams Meeting"
