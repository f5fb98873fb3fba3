"""calendarView delta: rounds, pages, sync states and their tokens.

A *round* starts from a first request (window from `startDateTime`/`endDateTime`) or from a
`$deltatoken`; it fixes, once, the list of entries it will page through (O(window) for a first
round, O(changes) for an incremental one) and every page then costs O(page size). Entries are
rendered when their page is served (current data; an item deleted meanwhile is sent as
`@removed`). The round's delta link names a *sync state*: the window, the change-log position at
the moment the round was computed, and which instance ids the client has been told about, per
stored item. Changes made while a round is being paged are after that position, so they come
again in the next round (Graph guarantees at-least-once, not exactly-once).

Incremental round, for each item (single instance or series master) changed since the state:
its current instances in the window are sent in full; instance ids the client knew for it that are
gone (deleted, cancelled, moved out of the window) are sent as `@removed` `{"reason": "deleted"}`;
an item changed entirely outside the window is also sent as `@removed` (the real service does
this, contract §4.1: the client filters by range).

Tokens are opaque base64url strings naming the mailbox, the state or round and (for skip
tokens) the page offset, plus the window. Failures, as observed on the real service:
- expired (lifetime from issue, by the emulator clock), evicted (the 4 newest sync states and rounds per
  mailbox are kept), cleared by `expire_delta_tokens()`, or an older `$skiptoken` replayed after a
  newer page of the same round: 410 `SyncStateNotFound`, "The sync state generation is not found;
  generation=N;[highest=M][M]...".
- not a token of ours, or one of another mailbox: 400 `BadRequest` (undocumented; the connector
  treats it like a 410 and starts over).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from m365emulator.calendar.model import StoredEvent
from m365emulator.errors import GraphError

if TYPE_CHECKING:
    from m365emulator.calendar.store import CalendarStore

KEEP = 4  # like the real service, which keeps a few generations ("[highest=157][157][155][156]")
TOKEN_LIFETIME = timedelta(days=7)  # every mailbox's, unless its store sets delta_token_lifetime
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


@dataclass(slots=True)
class SyncState:
    generation: int
    start: datetime
    end: datetime
    seq: int
    known: dict[str, tuple[str, ...]]
    issued: datetime


@dataclass(slots=True)
class Entry:
    instance_id: str
    item_id: str  # the stored item (single instance or master) it belongs to
    day: date | None  # occurrence / exception date
    removed: bool = False


@dataclass(slots=True)
class Round:
    generation: int
    start: datetime
    end: datetime
    entries: list[Entry]
    result: int  # generation of the SyncState its delta link names
    issued: datetime
    served: int = 0  # highest offset served so far


@dataclass(frozen=True, slots=True)
class Page:
    items: list[tuple[Entry, StoredEvent | None, date | None]]  # entry, what to render (None: removed)
    next_token: str | None  # $skiptoken
    delta_token: str | None  # $deltatoken


def _bad_token() -> GraphError:
    return GraphError(
        400, "BadRequest", "The delta or skip token is malformed or not valid for this request."
    )


class DeltaTracker:
    def __init__(self, store: CalendarStore) -> None:
        self.store = store
        self.generation = 0
        self.states: OrderedDict[int, SyncState] = OrderedDict()
        self.rounds: OrderedDict[int, Round] = OrderedDict()
        self.tag = hashlib.sha256(store.owner.user_id.encode()).hexdigest()[:8]

    # --------------------------------------------------------------------------- tokens

    def _encode(self, kind: str, generation: int, offset: int, start: datetime, end: datetime) -> str:
        text = f"{kind}.{self.tag}.{generation}.{offset}.{int(start.timestamp())}.{int(end.timestamp())}"
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    def _decode(self, token: str, kind: str) -> tuple[int, int]:
        try:
            padded = token + "=" * (-len(token) % 4)
            text = base64.urlsafe_b64decode(padded.encode()).decode()
            got_kind, tag, generation, offset, _start, _end = text.split(".")
            parsed = int(generation), int(offset)
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise _bad_token() from None
        if got_kind != kind or tag != self.tag:
            raise _bad_token()
        return parsed

    def _gone(self, generation: int) -> GraphError:
        recent = sorted({*self.states, *self.rounds}, reverse=True)[:3]
        tail = "".join(f"[{g}]" for g in recent)
        return GraphError(
            410,
            "SyncStateNotFound",
            f"The sync state generation is not found; generation={generation};"
            f"[highest={self.generation}]{tail}.",
        )

    def _expired(self, issued: datetime) -> bool:
        lifetime = self.store.delta_token_lifetime or TOKEN_LIFETIME
        return self.store.clock.now() - issued > lifetime

    def expire_all(self) -> int:
        count = len(self.states) + len(self.rounds)
        self.states.clear()
        self.rounds.clear()
        return count

    def oldest_live_seq(self) -> int:
        return min((s.seq for s in self.states.values()), default=self.store.seq)

    # --------------------------------------------------------------------------- rounds

    def _next_generation(self) -> int:
        self.generation += 1
        return self.generation

    def _keep(self, table: OrderedDict[int, Any], generation: int, value: Any) -> None:
        table[generation] = value
        while len(table) > KEEP:
            table.popitem(last=False)

    def start_round(self, start: datetime, end: datetime) -> Round:
        store = self.store
        entries: list[Entry] = []
        known: dict[str, tuple[str, ...]] = {}
        for item in store.items.values():
            instances = store.instances_of(item, start, end)
            if instances:
                known[item.id] = tuple(i.id for i in instances)
                entries.extend(Entry(i.id, item.id, i.original_date) for i in instances)
        return self._open(start, end, entries, known)

    def resume(self, token: str) -> Round:
        generation, _ = self._decode(token, "d")
        state = self.states.get(generation)
        if state is None or self._expired(state.issued):
            self.states.pop(generation, None)
            raise self._gone(generation)
        store = self.store
        known = dict(state.known)
        entries: list[Entry] = []
        for item_id in store.changed_since(state.seq):
            item = store.items.get(item_id)
            current = store.instances_of(item, state.start, state.end) if item is not None else []
            before = state.known.get(item_id, ())
            now_ids = {i.id for i in current}
            entries.extend(Entry(i.id, item_id, i.original_date) for i in current)
            entries.extend(Entry(old, item_id, None, removed=True) for old in before if old not in now_ids)
            if not current and not before:
                entries.append(Entry(item_id, item_id, None, removed=True))
            if current:
                known[item_id] = tuple(i.id for i in current)
            else:
                known.pop(item_id, None)
        return self._open(state.start, state.end, entries, known)

    def _open(
        self, start: datetime, end: datetime, entries: list[Entry], known: dict[str, tuple[str, ...]]
    ) -> Round:
        now = self.store.clock.now()
        state = SyncState(self._next_generation(), start, end, self.store.seq, known, now)
        self._keep(self.states, state.generation, state)
        rnd = Round(self._next_generation(), start, end, entries, state.generation, now)
        self._keep(self.rounds, rnd.generation, rnd)
        return rnd

    def continue_round(self, token: str) -> tuple[Round, int]:
        generation, offset = self._decode(token, "s")
        rnd = self.rounds.get(generation)
        if rnd is not None and self._expired(rnd.issued):
            del self.rounds[generation]
            rnd = None
        if rnd is None or offset < rnd.served or offset > len(rnd.entries):
            raise self._gone(generation)
        return rnd, offset

    def page(self, rnd: Round, offset: int, size: int) -> Page:
        rnd.served = max(rnd.served, offset)
        chunk = rnd.entries[offset : offset + size]
        items: list[tuple[Entry, StoredEvent | None, date | None]] = []
        for entry in chunk:
            if entry.removed:
                items.append((entry, None, None))
                continue
            try:
                target, day = self.store.get(entry.instance_id)
            except GraphError:
                items.append((entry, None, None))
                continue
            items.append((entry, target, day))
        after = offset + len(chunk)
        if after < len(rnd.entries):
            return Page(items, self._encode("s", rnd.generation, after, rnd.start, rnd.end), None)
        state = self.states.get(rnd.result)
        if state is None:
            raise self._gone(rnd.result)
        return Page(items, None, self._encode("d", state.generation, 0, rnd.start, rnd.end))


def removed_item(instance_id: str) -> dict[str, Any]:
    return {"@odata.type": "#microsoft.graph.event", "id": instance_id, "@removed": {"reason": "deleted"}}
