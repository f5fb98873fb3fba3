"""A tenant's migration progress and the state it shows, derived from its users (never stored, so neither
can drift).

The work is every staff member the tenant has: one not matched yet, or matched and not migrated yet, is
work to do; one synced, failed, or with nothing to migrate (unmatched, no mailbox, forbidden, disabled) is
done. Matching a batch of staff only moves users from "to do" to "done" or keeps them to do, so within one
migration the percentage never goes down; staff added (or a mailbox moved by a rematch) are more work. In
the all-users scope the directory is the staff: until discovery has stored every user, the work is not
known, and the percentage stays 0.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from math import ceil
from typing import Final, Protocol

from shared.domain.tenants import TenantState, UserScope
from shared.domain.users import MatchStatus, SyncState

MIGRATED: Final = frozenset({SyncState.SYNCED, SyncState.ERROR})  # a migration ran to its end
FINISHED: Final = MIGRATED | {SyncState.DISABLED}
# After the first matching, the users decide which of these the tenant shows.
SETTLED: Final = frozenset({TenantState.MIGRATING, TenantState.ACTIVE, TenantState.DEGRADED})


class ProgressOfUser(Protocol):
    """What progress reads of a user: a `UserRecord`, or its four properties alone (`UserProgress`)."""

    @property
    def match(self) -> MatchStatus: ...
    @property
    def sync_state(self) -> SyncState: ...
    @property
    def migrated_at(self) -> datetime | None: ...
    @property
    def updated_at(self) -> datetime: ...


@dataclass(frozen=True, slots=True)
class UserProgress:
    """A user as progress reads it, without the rest of its row (`UserRepository.list_progress`)."""

    match: MatchStatus
    sync_state: SyncState
    migrated_at: datetime | None  # when its last migration ended synced
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Progress:
    phase: str  # waiting_for_consent | matching | migrating | done | stopped
    percent: int
    total: int  # every staff member of the tenant
    done: int  # those with nothing left to do
    by_match: dict[str, int]
    by_state: dict[str, int]  # the matched users by sync state
    eta_seconds: int | None

    def as_json(self) -> dict[str, object]:
        return {
            "phase": self.phase,
            "percent": self.percent,
            "total": self.total,
            "done": self.done,
            "by_match": self.by_match,
            "by_state": self.by_state,
            "eta_seconds": self.eta_seconds,
        }


def finished(user: ProgressOfUser) -> bool:
    """Nothing is left to do for the user: migrated (synced or failed), or nothing to migrate."""
    if user.match is MatchStatus.PENDING:
        return False
    return user.match is not MatchStatus.MATCHED or user.sync_state in FINISHED


def progress(
    state: TenantState,
    users: Sequence[ProgressOfUser],
    connected_at: datetime | None,
    now: datetime,
    *,
    scope: UserScope = UserScope.STAFF,
) -> Progress:
    by_match = Counter(u.match.value for u in users)
    by_state = Counter(u.sync_state.value for u in users if u.match is MatchStatus.MATCHED)
    waiting = [u for u in users if not finished(u)]
    total = len(users)
    done = total - len(waiting)
    phase = _phase(state, waiting)
    counting = state is TenantState.CONNECTING and scope is UserScope.ALL_USERS  # discovery adds users
    if phase == "done":
        percent = 100
    elif not total or counting:
        percent = 0  # no work known yet: not "100 % of nothing"
    elif phase == "stopped":
        percent = done * 100 // total  # what was done before the tenant stopped
    else:
        # Rounded down, and below 100 until the phase is done (discovery may still add staff).
        percent = min(done * 100 // total, 99)
    eta: int | None = None
    if phase == "done":
        eta = 0
    elif phase in ("matching", "migrating") and not counting:
        eta = _eta(state, users, waiting, connected_at, now)
    return Progress(phase, percent, total, done, dict(by_match), dict(by_state), eta)


def _phase(state: TenantState, waiting: Sequence[ProgressOfUser]) -> str:
    if state is TenantState.PENDING_CONSENT:
        return "waiting_for_consent"
    if state.gone or state is TenantState.CONSENT_REVOKED:
        return "stopped"
    if state is TenantState.CONNECTING or any(u.match is MatchStatus.PENDING for u in waiting):
        return "matching"  # discovery has not listed the directory yet, or some staff are not looked up
    return "migrating" if waiting else "done"


def _eta(
    state: TenantState,
    users: Sequence[ProgressOfUser],
    waiting: Sequence[ProgressOfUser],
    connected_at: datetime | None,
    now: datetime,
) -> int | None:
    """The users still to do at the rate users were migrated since this migration began, from the stored
    timestamps (any worker answers the same): the first migration after a connection began when the tenant
    connected; staff added later began when the earliest of those still waiting was stored. Users with
    nothing to migrate finish at once and are left out of the rate. None until one user was migrated."""
    if state in (TenantState.CONNECTING, TenantState.MIGRATING) or not waiting:
        started = connected_at
    else:
        started = min(u.updated_at for u in waiting)
        if connected_at is not None:
            started = max(started, connected_at)
    if started is None:
        return None
    migrated = sum(1 for u in users if (ended := _migrated_at(u)) is not None and ended >= started)
    if not migrated:
        return None
    elapsed = max((now - started).total_seconds(), 1.0)  # from the first measured second
    return ceil(len(waiting) * elapsed / migrated)


def _migrated_at(user: ProgressOfUser) -> datetime | None:
    """When a matched user's migration ended (synced, or the failure); None while it has not. A catch-up
    sync of a user migrated before is not a migration (it moves `last_sync_at`, not `migrated_at`)."""
    if user.match is not MatchStatus.MATCHED:
        return None
    if user.sync_state is SyncState.SYNCED:
        return user.migrated_at
    return user.updated_at if user.sync_state is SyncState.ERROR else None


def tenant_state(state: TenantState, shown: Progress) -> TenantState:
    """The state a tenant shows. Once its staff were first matched, its users decide: `migrating` while any
    has work left (the first migration, staff added later, a rematched mailbox), else `degraded` while
    any is in error, else `active`. The stored state keeps the rest (connecting, revoked, disconnecting)."""
    if state not in SETTLED:
        return state
    if shown.done < shown.total:
        return TenantState.MIGRATING
    if shown.by_state.get(SyncState.ERROR.value):
        return TenantState.DEGRADED
    return TenantState.ACTIVE
