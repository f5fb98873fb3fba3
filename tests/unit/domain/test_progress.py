"""A tenant's migration progress: 0 % until there is work, never backwards, 100 % exactly when all is done."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.progress import UserProgress, progress
from shared.domain.tenants import TenantState, UserScope
from shared.domain.users import DirectoryUser, Match, MatchStatus, StaffMember, SyncState, UserRecord

pytestmark = pytest.mark.unit

TID = "contoso.example"
CONNECTED = datetime(2026, 12, 1, 9, tzinfo=UTC)
NOT_MATCHED = [MatchStatus.UNMATCHED, MatchStatus.NO_MAILBOX, MatchStatus.FORBIDDEN, MatchStatus.DISABLED]


def staff(n: int, at: datetime = CONNECTED - timedelta(days=1)) -> UserRecord:
    """A staff member the host registered: not looked up yet."""
    return UserRecord(
        TID, StaffMember(f"s{n}", f"user{n}@contoso.example", None, f"User {n}"), MatchStatus.PENDING, at
    )


def matched(user: UserRecord, at: datetime, status: MatchStatus = MatchStatus.MATCHED) -> UserRecord:
    graph_user = DirectoryUser(f"g-{user.staff_id}", f"{user.staff_id}@contoso.example", None, (), True)
    return user.with_match(Match(status, graph_user if status is MatchStatus.MATCHED else None), at)


def synced(user: UserRecord, at: datetime) -> UserRecord:
    return replace(user, sync_state=SyncState.SYNCED, last_sync_at=at, migrated_at=at, updated_at=at)


def failed(user: UserRecord, at: datetime) -> UserRecord:
    return replace(user, sync_state=SyncState.ERROR, last_error="the mailbox is gone", updated_at=at)


def read_for_progress(user: UserRecord) -> UserProgress:
    """The user as the repository's `list_progress` answers it: its four properties alone."""
    return UserProgress(user.match, user.sync_state, user.migrated_at, user.updated_at)


def test_waiting_for_consent_with_staff_registered_is_0_percent_not_100() -> None:
    # The console showed a full bar and "100 % (0 of 0 users)" beside "Pending: 24".
    users = [staff(n) for n in range(24)]
    shown = progress(TenantState.PENDING_CONSENT, users, None, CONNECTED)
    assert (shown.phase, shown.percent, shown.done, shown.total) == ("waiting_for_consent", 0, 0, 24)
    assert shown.eta_seconds is None


def test_a_connected_tenant_whose_discovery_has_not_counted_anyone_is_0_percent_not_done() -> None:
    shown = progress(TenantState.CONNECTING, [], CONNECTED, CONNECTED + timedelta(seconds=3))
    assert (shown.phase, shown.percent) == ("matching", 0)


def test_matching_in_batches_does_not_run_the_bar_backwards() -> None:
    # 0, then 95 on the first batch, then 22 when the next batch of staff was matched.
    users = [staff(n) for n in range(20)]
    now = CONNECTED + timedelta(seconds=1)
    seen = [progress(TenantState.CONNECTING, users, CONNECTED, now).percent]
    for start in range(0, 20, 5):
        for n in range(start, start + 5):
            users[n] = matched(users[n], now)
        seen.append(progress(TenantState.CONNECTING, users, CONNECTED, now).percent)
        now += timedelta(seconds=2)
        for n in range(start, start + 5):
            users[n] = synced(users[n], now)
        seen.append(progress(TenantState.CONNECTING, users, CONNECTED, now).percent)
    assert seen == sorted(seen) and seen[0] == 0
    done = progress(TenantState.MIGRATING, users, CONNECTED, now)
    assert (done.phase, done.percent, done.done, done.total, done.eta_seconds) == ("done", 100, 20, 20, 0)


def test_the_eta_is_there_once_the_first_user_finished_and_counts_from_the_migrations_start() -> None:
    users = [matched(staff(n), CONNECTED) for n in range(10)]
    start = progress(TenantState.MIGRATING, users, CONNECTED, CONNECTED + timedelta(seconds=1))
    assert start.eta_seconds is None  # nothing measured yet
    users[0] = synced(users[0], CONNECTED + timedelta(seconds=4))
    shown = progress(TenantState.MIGRATING, users, CONNECTED, CONNECTED + timedelta(seconds=5))
    assert shown.eta_seconds == 45  # one user in 5 s, nine to go
    # Still while discovery goes on (the console showed no ETA for much of the run).
    matching = progress(
        TenantState.CONNECTING, [*users, staff(99)], CONNECTED, CONNECTED + timedelta(seconds=5)
    )
    assert matching.phase == "matching" and matching.eta_seconds == 50


def test_staff_added_to_an_active_tenant_are_timed_from_when_they_were_added() -> None:
    users = [synced(matched(staff(n), CONNECTED), CONNECTED + timedelta(minutes=1)) for n in range(8)]
    added = CONNECTED + timedelta(days=3)
    users += [matched(staff(n, added), added) for n in range(8, 12)]
    shown = progress(TenantState.ACTIVE, users, CONNECTED, added + timedelta(seconds=2))
    assert (shown.phase, shown.percent, shown.eta_seconds) == ("migrating", 66, None)
    users[8] = synced(users[8], added + timedelta(seconds=10))
    shown = progress(TenantState.ACTIVE, users, CONNECTED, added + timedelta(seconds=10))
    assert (shown.percent, shown.eta_seconds) == (75, 30)  # not three days per user


def test_users_with_nothing_to_migrate_are_done_but_do_not_speed_the_eta_up() -> None:
    users = [matched(staff(n), CONNECTED) for n in range(4)]
    users += [matched(staff(n), CONNECTED, status) for n, status in enumerate(NOT_MATCHED, start=4)]
    shown = progress(TenantState.MIGRATING, users, CONNECTED, CONNECTED + timedelta(seconds=30))
    assert (shown.done, shown.total, shown.percent, shown.eta_seconds) == (4, 8, 50, None)
    users[0] = failed(users[0], CONNECTED + timedelta(seconds=30))
    shown = progress(TenantState.MIGRATING, users, CONNECTED, CONNECTED + timedelta(seconds=30))
    assert (shown.done, shown.percent, shown.eta_seconds) == (5, 62, 90)


# --- the rule as a property: any order of matching batches and finished users within one migration ------
# (and the same answer from the users' four properties alone)

STEPS = st.lists(
    st.tuples(st.sampled_from(["match", "start", "finish", "discovered", "wait"]), st.integers(0, 10_000)),
    max_size=150,
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(UserScope), st.integers(1, 40), st.integers(0, 60), STEPS)
def test_progress_over_one_migration_never_decreases_and_reaches_100_exactly_when_all_is_done(
    scope: UserScope, size: int, directory_only: int, steps: list[tuple[str, int]]
) -> None:
    users = [staff(n) for n in range(size)]
    # The all-users scope: discovery stores the directory's other users batch by batch as it goes.
    unseen = [staff(n) for n in range(size, size + directory_only)] if scope is UserScope.ALL_USERS else []
    state, now = TenantState.CONNECTING, CONNECTED
    before = progress(TenantState.PENDING_CONSENT, users, None, now, scope=scope)
    assert before.percent == 0
    migrated = 0
    for step, pick in steps:
        now += timedelta(seconds=pick % 7)
        if step == "match":  # discovery saves a batch of matches
            waiting = [i for i, u in enumerate(users) if u.match is MatchStatus.PENDING]
            batch = 1 + pick % 25
            for k, i in enumerate(waiting[:batch]):
                seed = pick + k
                status = MatchStatus.MATCHED if seed % 3 else NOT_MATCHED[seed % len(NOT_MATCHED)]
                users[i] = matched(users[i], now, status)
            users += [matched(u, now) for u in unseen[:batch]]
            del unseen[:batch]
        elif step in ("start", "finish"):
            todo = [
                i
                for i, u in enumerate(users)
                if u.match is MatchStatus.MATCHED and u.sync_state in (SyncState.PENDING, SyncState.MIGRATING)
            ]
            if todo:
                i = todo[pick % len(todo)]
                if step == "start":
                    users[i] = replace(users[i], sync_state=SyncState.MIGRATING, updated_at=now)
                else:
                    users[i] = (synced if pick % 5 else failed)(users[i], now)
                    migrated += 1
        elif step == "discovered" and not unseen and not any(u.match is MatchStatus.PENDING for u in users):
            state = TenantState.MIGRATING
        shown = progress(state, users, CONNECTED, now, scope=scope)
        # The four properties `list_progress` reads are all it takes: the same progress as the whole rows.
        assert progress(state, [read_for_progress(u) for u in users], CONNECTED, now, scope=scope) == shown
        assert shown.percent >= before.percent, (before, shown)
        all_done = state is TenantState.MIGRATING and shown.done == shown.total
        assert (shown.percent == 100) == all_done
        assert (shown.phase == "done") == all_done
        if migrated and not all_done and (state is TenantState.MIGRATING or scope is UserScope.STAFF):
            assert shown.eta_seconds is not None and shown.eta_seconds >= 0
        before = shown


def test_a_stopped_tenant_shows_what_was_done_before_it_stopped() -> None:
    users = [synced(matched(staff(n), CONNECTED), CONNECTED + timedelta(minutes=1)) for n in range(3)]
    users.append(matched(staff(3), CONNECTED))
    shown = progress(TenantState.CONSENT_REVOKED, users, CONNECTED, CONNECTED + timedelta(hours=1))
    assert (shown.phase, shown.percent, shown.eta_seconds) == ("stopped", 75, None)
    users[3] = synced(users[3], CONNECTED + timedelta(minutes=2))
    shown = progress(TenantState.CONSENT_REVOKED, users, CONNECTED, CONNECTED + timedelta(hours=1))
    assert shown.percent == 100
