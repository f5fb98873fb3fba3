"""The host's staff, the tenant's directory users, and how one is matched to the other."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Final

from shared.domain.teams import TeamsAccess, TeamsStatus


class MatchStatus(StrEnum):
    MATCHED = "matched"
    UNMATCHED = "unmatched"
    FORBIDDEN = "forbidden"  # an access policy (or missing rights) keeps the app out of this mailbox
    NO_MAILBOX = "no_mailbox"
    DISABLED = "disabled"
    PENDING = "pending"  # not looked up yet (the tenant is not connected, or a rematch is queued)


class MatchedBy(StrEnum):
    UPN = "upn"
    MAIL = "mail"
    PROXY_ADDRESS = "proxy_address"
    DIRECTORY = "directory"  # the all-users scope: the directory user is the staff member


class SyncState(StrEnum):
    PENDING = "pending"
    MIGRATING = "migrating"
    SYNCED = "synced"
    ERROR = "error"
    DISABLED = "disabled"


class MailboxAccess(StrEnum):
    OK = "ok"
    NO_MAILBOX = "no_mailbox"
    FORBIDDEN = "forbidden"


@dataclass(frozen=True, slots=True)
class LegacyLink:
    """One appointment the host wrote in its EWS era: its id, and how to find it in Outlook."""

    appointment_id: str
    ews_id: str | None = None  # translated to a Graph id with translateExchangeIds
    ical_uid: str | None = None


@dataclass(frozen=True, slots=True)
class StaffSwitches:
    """What the connector does for one staff member, as COINS shows it per user ("Synchronise
    Appointments", "New Outlook to Coins", "Emails"). The calendar directions and video are on unless the
    host turns them off; mail is opted into; the To Do directions ("Synchronise Tasks", "New Outlook to
    ERP+") are on unless the host turns them off.

    - `calendar_to_outlook`: the host's appointments are written into this user's calendar;
    - `calendar_from_outlook`: this user's Outlook events reach the host (the feed);
    - `video`: this user's copies carry a Teams meeting, and the user may organise one;
    - `mail`: the host may send mail from this user's mailbox;
    - `tasks_to_outlook`: the host's tasks are written into this user's To Do list;
    - `tasks_from_outlook`: what this user adds, changes or completes in that list reaches the host.
    """

    calendar_to_outlook: bool = True
    calendar_from_outlook: bool = True
    video: bool = True
    mail: bool = False
    tasks_to_outlook: bool = True
    tasks_from_outlook: bool = True

    def changed(self, changes: Mapping[str, bool]) -> StaffSwitches:
        """These switches with some of them set (`changes` names only switches of this record)."""
        return replace(self, **changes)

    def as_dict(self) -> dict[str, bool]:
        return {name: getattr(self, name) for name in SWITCH_NAMES}


SWITCH_NAMES: Final = (
    "calendar_to_outlook",
    "calendar_from_outlook",
    "video",
    "mail",
    "tasks_to_outlook",
    "tasks_from_outlook",
)


@dataclass(frozen=True, slots=True)
class StaffMember:
    """What the host says about one of its staff."""

    staff_id: str
    email: str | None
    upn: str | None
    display_name: str
    enabled: bool = True
    legacy_ids: tuple[LegacyLink, ...] = ()  # appointments the host already wrote, for migration
    switches: StaffSwitches = StaffSwitches()
    todo_list_name: str | None = None  # this member's To Do list, instead of the tenant's `todo_list_name`


@dataclass(frozen=True, slots=True)
class DirectoryUser:
    id: str
    user_principal_name: str
    mail: str | None
    proxy_addresses: tuple[str, ...]
    account_enabled: bool
    display_name: str = ""

    def smtp_addresses(self) -> set[str]:
        """Every SMTP proxy address, lower-case, without the `smtp:` prefix."""
        return {
            address.split(":", 1)[1].casefold()
            for address in self.proxy_addresses
            if address.lower().startswith("smtp:")
        }


@dataclass(frozen=True, slots=True)
class Match:
    status: MatchStatus
    user: DirectoryUser | None = None
    matched_by: MatchedBy | None = None
    reason: str | None = None
    teams: TeamsAccess | None = None  # the Teams status found with it (None: not looked up)


def match_staff(staff: StaffMember, directory: Iterable[DirectoryUser]) -> Match:
    """UPN first, then mail, then proxy address, each case-insensitively.

    Pure: the caller brings the candidates (the whole directory, or the few a lookup returned). A
    disabled account is `disabled`; the mailbox check (`no_mailbox`, `forbidden`) comes after.
    """
    users = list(directory)
    upn = (staff.upn or "").casefold()
    email = (staff.email or "").casefold()
    rules: tuple[tuple[str, MatchedBy, Callable[[DirectoryUser], bool]], ...] = (
        (upn, MatchedBy.UPN, lambda u: u.user_principal_name.casefold() == upn),
        (email, MatchedBy.MAIL, lambda u: (u.mail or "").casefold() == email),
        (email or upn, MatchedBy.PROXY_ADDRESS, lambda u: (email or upn) in u.smtp_addresses()),
    )
    for key, matched_by, found in rules:
        if not key:
            continue
        hits = [u for u in users if found(u)]
        if len(hits) > 1:
            return Match(MatchStatus.UNMATCHED, reason=f"{len(hits)} directory users share this {matched_by}")
        if hits:
            user = hits[0]
            if not user.account_enabled:
                return Match(MatchStatus.DISABLED, user, matched_by, "the account is disabled in Entra ID")
            return Match(MatchStatus.MATCHED, user, matched_by)
    if not upn and not email:
        return Match(MatchStatus.UNMATCHED, reason="neither upn nor email was given")
    return Match(MatchStatus.UNMATCHED, reason="no directory user has this UPN, mail or proxy address")


def apply_mailbox_access(match: Match, access: MailboxAccess) -> Match:
    if match.status is not MatchStatus.MATCHED:
        return match
    if access is MailboxAccess.NO_MAILBOX:
        return replace(match, status=MatchStatus.NO_MAILBOX, reason="the user has no Exchange Online mailbox")
    if access is MailboxAccess.FORBIDDEN:
        return replace(
            match,
            status=MatchStatus.FORBIDDEN,
            reason="the app may not open this mailbox (an application access policy or missing permission)",
        )
    return match


@dataclass(frozen=True, slots=True)
class TaskSync:
    """Outlook to host for the user's To Do list: where its delta read stands, its `todoTask` subscription,
    and how its last run went (kept apart from the calendar's, so a list that cannot be read never touches
    calendar sync)."""

    state: SyncState = SyncState.PENDING
    list_id: str | None = None  # the list the delta link and the subscription are on
    delta_link: str | None = None
    subscription_id: str | None = None
    subscription_expires_at: datetime | None = None
    last_sync_at: datetime | None = None
    migrated_at: datetime | None = None  # when the list was first read and linked
    last_error: str | None = None
    tasks: int = 0  # the tasks of the list the connector keeps a status of
    zone: str | None = None  # the mailbox's IANA zone, in which a due date is a day

    @property
    def migrating(self) -> bool:
        """Never read, or the list changed since: its tasks are linked, not announced."""
        return self.last_sync_at is None or self.state in (SyncState.PENDING, SyncState.MIGRATING)


@dataclass(frozen=True, slots=True)
class UserRecord:
    """One staff member of one tenant: the host's data, the match, and the sync status."""

    tenant_id: str
    staff: StaffMember
    match: MatchStatus
    updated_at: datetime
    graph_user_id: str | None = None
    matched_by: MatchedBy | None = None
    match_reason: str | None = None
    sync_state: SyncState = SyncState.PENDING
    last_sync_at: datetime | None = None
    migrated_at: datetime | None = None  # when its last migration ended synced (catch-ups move last_sync_at)
    last_error: str | None = None
    subscription_id: str | None = None
    subscription_expires_at: datetime | None = None
    delta_link: str | None = None  # where the next delta read of the calendar window starts
    delta_since: datetime | None = None  # when the complete read that began the held delta link ran
    # The window the held delta link reads (`sync_window.read_window`); None on a row from before it was kept.
    delta_window: tuple[datetime, datetime] | None = None
    teams: TeamsStatus | None = None  # None: not looked up yet
    teams_reason: str | None = None  # unmatched or forbidden: why
    task_sync: TaskSync = TaskSync()  # the To Do list's Outlook-to-host state
    todo_list_id: str | None = None  # the To Do list the host's tasks go to, once found or made
    todo_list_name: str | None = None  # the name that list was found or made under
    todo_list_reason: str | None = None  # why the list cannot be found or made, for a person to act on
    etag: str | None = None

    @property
    def staff_id(self) -> str:
        return self.staff.staff_id

    def with_match(self, match: Match, now: datetime) -> UserRecord:
        graph_user_id = match.user.id if match.user else None
        moved = graph_user_id != self.graph_user_id
        sync_state = self.sync_state
        if match.status is not MatchStatus.MATCHED:
            sync_state = SyncState.DISABLED
        elif moved or sync_state is SyncState.DISABLED:
            sync_state = SyncState.PENDING
        return replace(
            self,
            match=match.status,
            graph_user_id=graph_user_id,
            matched_by=match.matched_by,
            match_reason=match.reason,
            sync_state=sync_state,
            teams=match.teams.status if match.teams is not None else self.teams,
            teams_reason=match.teams.reason if match.teams is not None else self.teams_reason,
            updated_at=now,
        )


class DirectoryIndex:
    """The directory indexed by UPN, mail and SMTP proxy address, for matching many staff at once."""

    def __init__(self, users: Iterable[DirectoryUser]) -> None:
        self.users = list(users)
        self._by_key: dict[str, list[DirectoryUser]] = {}
        for user in self.users:
            keys = {user.user_principal_name.casefold(), *user.smtp_addresses()}
            if user.mail:
                keys.add(user.mail.casefold())
            for key in keys:
                self._by_key.setdefault(key, []).append(user)

    def candidates(self, staff: StaffMember) -> list[DirectoryUser]:
        found: dict[str, DirectoryUser] = {}
        for key in (staff.upn, staff.email):
            for user in self._by_key.get((key or "").casefold(), []):
                found[user.id] = user
        return list(found.values())
