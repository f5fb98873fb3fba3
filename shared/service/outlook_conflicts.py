"""Outlook changed a connector event: rechecks, updates that meet someone else's change, and the report.

- a series is updated in place: its master PATCHed, its exceptions re-applied or put back
  (`finish_write`), those Outlook changed too (found by a recheck's flagged items, or after an update's
  412 by one read of the series' instances over the window); a cancelled occurrence the host takes back,
  which Graph cannot restore, becomes an event of its own beside the series (`finish_write`);
- updates carry `If-Match` with the change key of the connector's last write: a 412 means Outlook changed
  the event meanwhile, and the tenant's conflict policy decides (host wins: written again; Outlook wins:
  kept, until the host's next revision);
- a delta read that sees a connector event changed or deleted in Outlook queues a recheck of that copy;
  the outcome goes on the feed as `appointment.changed_in_outlook`, whose event shows what an `event.*`
  change would (only free/busy in privacy mode).
Touches that leave the written content as it was, and the connector's own writes whose answer was lost,
are not conflicts. Kept apart from the write job (`appointment_writes.py`): this is the part that decides
between the host's and Outlook's versions, the rest only applies the plan.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, timedelta
from typing import Any, Final

from shared.domain.appointments import CopyState, EventDraft, StaffCopy, StaffTarget
from shared.domain.calendar import EventKind
from shared.domain.planner import Visibility
from shared.domain.tenants import ConflictPolicy
from shared.domain.timezones import require_zone
from shared.service.appointment_copies import WritePass, delete_copy, finish_write, remember_written
from shared.service.errors import EventChanged, EventMissing, RateLimited
from shared.service.records import Change, WrittenEvent

MAX_FLAGGED_READS: Final = 3  # occurrences read to tell an Outlook change of a series from an echo
UPDATE_ATTEMPTS: Final = 3  # If-Match refusals one update rides out, reading and deciding again each time


async def update_copy(
    run: WritePass, copy: StaffCopy, target: StaffTarget, draft: EventDraft
) -> StaffCopy | None:
    """PATCH the copy; None when it must be created anew (gone, or a series Outlook changed).

    Outlook changed it since the connector's last write (a recheck reads it; a plain update learns it from
    the 412 of its If-Match): Outlook wins keeps Outlook's version and reports it (the copy turns
    `conflict` holding Outlook's change key, so the host's next revision is written over it); host wins
    reports it and writes the host's version again."""
    assert copy.event_id is not None and target.graph_user_id is not None
    writer, tenant, uid = run.services.calendar_writer, run.tenant, target.graph_user_id
    event_id = copy.event_id
    policy = tenant.settings.conflict_policy
    if_match = copy.change_key
    if copy.staff_id in run.recheck:
        try:
            current = await writer.read(tenant, uid, event_id)
        except EventMissing:
            return await _gone_in_outlook(run, copy, policy)
        settled = await _rechecked(run, copy, target, current, draft, policy)
        if settled is not _WRITE:
            return settled if isinstance(settled, StaffCopy) else None
        if_match = current.change_key
        copy = _with_outlook_days(_seen(copy, current), run.outlook_days.get(copy.staff_id))
    if draft.recurrence is not None and copy.exception_keys and not copy.override_days:
        await _anew(run, copy)  # written before copies kept their exceptions' days: anew, this once
        return None
    for _ in range(UPDATE_ATTEMPTS):
        try:
            written = await _patch(run, copy, uid, event_id, draft, if_match)
        except EventMissing:
            return await _gone_in_outlook(run, copy, policy)
        except EventChanged:  # If-Match refused: someone changed it since `if_match`, maybe the connector
            try:
                current = await writer.read(tenant, uid, event_id)
            except EventMissing:
                return await _gone_in_outlook(run, copy, policy)
            if _holds(current, draft, copy):  # its own write, whose answer was lost: nothing to put back
                return await finish_write(run, copy, target, draft, current)
            # A series: the 412 does not say which occurrence Outlook changed, so its instances are read.
            edited = await _outlook_exceptions(run, copy, uid, draft) if draft.recurrence else set()
            if not _unchanged(copy, current) or edited:
                kept = await _changed_in_outlook(run, copy, current, policy)
                if kept is not None:
                    return kept
                copy = _with_outlook_days(copy, edited)  # host wins: the master PATCHed back, these put back
            if_match = current.change_key
            copy = _seen(copy, current)  # reported once: a later refusal compares with this version
            continue
        return await finish_write(run, copy, target, draft, written)
    raise RateLimited(5, "the event kept changing while it was written")


async def _patch(  # noqa: PLR0917 (the PATCH's inputs, in order)
    run: WritePass,
    copy: StaffCopy,
    graph_user_id: str,
    event_id: str,
    draft: EventDraft,
    if_match: str | None,
) -> WrittenEvent:
    try:
        return await run.services.calendar_writer.update(run.tenant, graph_user_id, event_id, draft, if_match)
    except RateLimited:  # Graph may have applied it: Outlook holding it later is the connector's own write
        run.copies[copy.staff_id] = replace(copy, state=CopyState.PENDING).with_sent(draft)  # still to write
        raise


_WRITE: Final = object()  # `_rechecked`: go on and write the host's version


async def _rechecked(  # noqa: PLR0917 (one copy's recheck: its inputs, in order)
    run: WritePass,
    copy: StaffCopy,
    target: StaffTarget,
    current: WrittenEvent,
    draft: EventDraft,
    policy: ConflictPolicy,
) -> StaffCopy | object | None:
    """A copy a delta read saw changed: the copy to keep, None to write it anew, or `_WRITE`."""
    behind = copy.revision < run.record.revision or copy.state is CopyState.PENDING
    # Occurrences the same read flagged are looked at first: the master holding the connector's own write
    # says nothing of an occurrence someone edited in Outlook meanwhile.
    series_changed = draft.recurrence is not None and await _occurrences_changed(run, copy)
    if behind and _holds(current, draft, copy) and not series_changed:  # its own write, the answer lost
        return await finish_write(run, copy, target, draft, current)
    if (_unchanged(copy, current) or _holds(current, draft, copy)) and not series_changed:
        if not behind:  # the connector's echo, or a touch: its status goes on naming the connector's item
            await remember_written(run, copy, current, master=draft.recurrence is not None)
            return replace(copy, change_key=current.change_key)
        return _WRITE
    kept = await _changed_in_outlook(run, copy, current, policy)
    if kept is not None:
        return kept
    if draft.recurrence is not None and series_changed and not run.outlook_days.get(copy.staff_id):
        await _anew(run, copy)  # an Outlook exception of an unknown date cannot be put back in place
        return None
    return _WRITE  # the master PATCHed back; the occurrences Outlook changed are put back (`finish_write`)


def _holds(current: WrittenEvent, draft: EventDraft, copy: StaffCopy) -> bool:
    """Outlook holds exactly what the connector sends (compared whatever Exchange did to the body; the
    occurrences the copy restored as events of their own stay cancelled in the series)."""
    return current.shape is not None and current.shape.holds(draft, copy.restored)


def _seen(copy: StaffCopy, current: WrittenEvent) -> StaffCopy:
    """The copy measured against Outlook's version from now on (its change was reported already)."""
    return replace(copy, change_key=current.change_key, written_hash=current.written_hash)


def _unchanged(copy: StaffCopy, current: WrittenEvent) -> bool:
    """Outlook's version still holds what the connector wrote (the same change key, or only a touch), or an
    update the connector sent whose answer was lost."""
    if current.change_key == copy.change_key:
        return True
    if copy.sent_holds(current.shape):
        return True
    return current.written_hash is not None and current.written_hash == copy.written_hash


async def _occurrences_changed(run: WritePass, copy: StaffCopy) -> bool:
    """Whether an occurrence the delta read flagged was changed in Outlook (an exception the connector did
    not make, or one it made that carries another change key now). A few are enough to tell. The original
    dates of those read go to `run.outlook_days`, for `finish_write` to put them back in place."""
    flagged = sorted(run.flagged - {copy.event_id})[:MAX_FLAGGED_READS]
    if not flagged or copy.graph_user_id is None:
        return False
    writer = run.services.calendar_writer
    appointment = run.record.appointment
    zone = require_zone(appointment.time_zone) if appointment is not None else UTC
    changed = False
    for item_id in flagged:
        try:
            found = await writer.read(run.tenant, copy.graph_user_id, item_id)
        except EventMissing:  # an occurrence cancelled in Outlook shows in its master's cancelledOccurrences
            continue  # (compared by `_unchanged` and `_holds`); a missing id may be an earlier copy's
        kind = found.event.kind if found.event is not None else None
        if kind is EventKind.EXCEPTION and (
            item_id not in copy.exceptions or found.change_key not in copy.exception_keys
        ):
            changed = True
            if found.original_start is not None:
                run.outlook_days.setdefault(copy.staff_id, set()).add(
                    found.original_start.astimezone(zone).date()
                )
    return changed


async def _outlook_exceptions(
    run: WritePass, copy: StaffCopy, graph_user_id: str, draft: EventDraft
) -> set[date]:
    """The original dates of the series' exceptions in the sync window that the connector did not make (or
    that carry another change key than its own): what Outlook changed, for `finish_write` to put back in
    place. One read of the series' instances over the window (an update's 412 names none of them)."""
    assert copy.event_id is not None
    start, end = run.tenant.settings.window(run.services.clock.now())
    days = [start.date() + timedelta(days=n) for n in range((end - start).days + 1)]
    found = await run.services.calendar_writer.occurrences(
        run.tenant, graph_user_id, copy.event_id, days, draft.time_zone
    )
    return {
        day
        for day, instance in found.items()
        if instance.event is not None
        and instance.event.kind is EventKind.EXCEPTION
        and (instance.id not in copy.exceptions or instance.change_key not in copy.exception_keys)
    }


def _with_outlook_days(copy: StaffCopy, days: set[date] | None) -> StaffCopy:
    """The copy with the occurrences Outlook changed among those the next write puts back in place."""
    if not days:
        return copy
    return replace(copy, override_days=tuple(sorted({*copy.override_days, *days})))


async def _anew(run: WritePass, copy: StaffCopy) -> None:
    """Delete the copy so that the caller creates it again (the staff member stays on the appointment)."""
    await delete_copy(run, copy)
    run.removed.discard(copy.staff_id)


async def _gone_in_outlook(run: WritePass, copy: StaffCopy, policy: ConflictPolicy) -> StaffCopy | None:
    if policy is ConflictPolicy.OUTLOOK_WINS and copy.state is not CopyState.CONFLICT:
        _note_outlook_change(run, copy, "deleted", "kept", None)
        await run.services.item_statuses.note(run.tenant.tenant_id, copy.staff_id, [], [copy.event_id or ""])
        return replace(
            copy, state=CopyState.CONFLICT, revision=run.record.revision, error="deleted in Outlook"
        )
    if copy.state is not CopyState.CONFLICT:
        _note_outlook_change(run, copy, "deleted", "recreated", None)
    return None


async def _changed_in_outlook(
    run: WritePass, copy: StaffCopy, current: WrittenEvent, policy: ConflictPolicy
) -> StaffCopy | None:
    """Outlook changed a connector event. Outlook wins: keep it (the host's next revision is written over
    it). Host wins: None, and the caller writes the host's version again."""
    if policy is ConflictPolicy.OUTLOOK_WINS:
        _note_outlook_change(run, copy, "updated", "kept", current)
        await remember_written(
            run,
            copy,
            current,
            master=run.record.appointment is not None and bool(run.record.appointment.recurrence),
        )
        return replace(
            copy,
            state=CopyState.CONFLICT,
            change_key=current.change_key,
            written_hash=current.written_hash,
            revision=run.record.revision,
            error="changed in Outlook; the tenant's policy keeps Outlook's version",
        )
    _note_outlook_change(run, copy, "updated", "reverted", current)
    return None


def _note_outlook_change(
    run: WritePass, copy: StaffCopy, change: str, resolution: str, current: WrittenEvent | None
) -> None:
    data: dict[str, Any] = {
        "appointment_id": run.record.appointment_id,
        "change": change,
        "resolution": resolution,
        "event_id": copy.event_id,
    }
    if current is not None and current.event is not None:
        data["event"] = Visibility.of(run.tenant.settings).payload(current.event)  # as `event.*` shows it
    now = run.services.clock.now()
    run.changes.append(
        Change("appointment.changed_in_outlook", run.tenant.tenant_id, data, now, staff_id=copy.staff_id)
    )
