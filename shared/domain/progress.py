"""A tenant's migration progress, derived from its users (never stored, so it cannot drift)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from shared.domain.tenants import TenantState
from shared.domain.users import MatchStatus, SyncState, UserRecord

FINISHED = {SyncState.SYNCED, SyncState.ERROR}


@dataclass(frozen=True, slots=True)
class Progress:
    phase: str  # waiting_for_consent | matching | migrating | done | stopped
    percent: int
    total: int  # users to migrate (the matched ones)
    done: int
    by_match: dict[str, int]
    by_state: dict[str, int]
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


def progress(
    state: TenantState, users: Sequence[UserRecord], started_at: datetime | None, now: datetime
) -> Progress:
    by_match = Counter(u.match.value for u in users)
    population = [u for u in users if u.match is MatchStatus.MATCHED]
    by_state = Counter(u.sync_state.value for u in population)
    total = len(population)
    done = sum(1 for u in population if u.sync_state in FINISHED)
    # Whole percent, rounded down, so 100 means every user finished; an empty tenant is done.
    percent = 100 if total == 0 else (done * 100) // total
    if state is TenantState.PENDING_CONSENT:
        phase = "waiting_for_consent"
    elif state.gone or state is TenantState.CONSENT_REVOKED:
        phase = "stopped"
    elif by_match.get(MatchStatus.PENDING.value):
        phase = "matching"
    elif done < total:
        phase = "migrating"
    else:
        phase = "done"
    eta: int | None = None
    if phase == "migrating" and started_at is not None and done > 0:
        elapsed = max((now - started_at).total_seconds(), 1.0)
        eta = int((total - done) * elapsed / done)
    if phase not in {"migrating", "matching"}:
        eta = 0 if phase == "done" else None
    return Progress(phase, percent, total, done, dict(by_match), dict(by_state), eta)
