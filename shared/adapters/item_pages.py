"""A user's item statuses packed into pages: the layout of the `outlookitems` partition, without I/O.

A mailbox holds tens to thousands of items, and the sync reads all of a user's statuses on every run
that plans anything. One row per item made a migration write a row per event (every row a separate
entity to index and store); packed, a typical mailbox is one row and the largest a few dozen.

Each item belongs to a hash slot (`slot`: 16 hex digits of its Graph id's BLAKE2b). A page holds the
items whose slot starts with its prefix and is stored as one row, `p` + prefix, holding the statuses
as compact JSON lines split over string properties of `PART_CHARS`. A user's pages always cover every
slot exactly once: there is none (nothing stored yet), or the root page alone, or the pages a split
left. A page over `PAGE_CHARS` splits into all sixteen children (empty ones too) in the transaction that
deletes it, so every page is created either as the first root or by such a split, and each is guarded
(Insert fails on an existing row, Replace and Delete on a changed one): concurrent writers never
break the cover, they lose a race and read again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from shared.adapters.table_batch import Delete, Insert, Operation, Replace
from shared.domain.planner import ItemStatus

PAGE_KEY: Final = "p"  # a page's RowKey is this and its slot prefix
PART_CHARS: Final = 30_000  # characters per string property (one holds 32K UTF-16 units)
PAGE_CHARS: Final = 240_000  # a page over this splits: 480 KB as stored (UTF-16), half an entity's 1 MiB
SLOT_DIGITS: Final = 16
HEX: Final = "0123456789abcdef"


def slot(graph_id: str) -> str:
    return hashlib.blake2b(graph_id.encode(), digest_size=SLOT_DIGITS // 2).hexdigest()


def page_key(prefix: str) -> str:
    return f"{PAGE_KEY}{prefix}"


def is_page_key(row_key: str) -> bool:
    return row_key.startswith(PAGE_KEY) and all(c in HEX for c in row_key[len(PAGE_KEY) :])


def encode_status(status: ItemStatus) -> str:
    """One status as a compact ASCII JSON array (its length is what is stored); trailing empties left off."""
    fields: list[Any] = [
        status.graph_id,
        status.change_key,
        status.ical_uid,
        status.content_hash,
        status.ends_at.astimezone(UTC).isoformat(),
        int(status.admitted),
        status.appointment_id,
        status.series_master_id,
        int(status.written),
        int(status.master),
    ]
    while fields[-1] in (None, 0):
        fields.pop()
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=True)


def decode_status(line: str) -> ItemStatus:
    fields: list[Any] = json.loads(line)
    fields += [None] * (10 - len(fields))
    graph_id, change_key, ical_uid, content_hash, ends_at, admitted, appointment_id, master_id = fields[:8]
    return ItemStatus(
        graph_id=graph_id,
        change_key=change_key,
        ical_uid=ical_uid,
        content_hash=content_hash,
        ends_at=datetime.fromisoformat(ends_at),
        admitted=bool(admitted),
        appointment_id=appointment_id,
        series_master_id=master_id,
        written=bool(fields[8]),
        master=bool(fields[9]),
    )


@dataclass
class Page:
    """One stored (or about to be stored) page: its slot prefix, its row's ETag (None: not stored),
    and its items' encoded lines by Graph id."""

    prefix: str
    etag: str | None = None
    lines: dict[str, str] = field(default_factory=dict)

    @property
    def chars(self) -> int:
        return sum(len(line) + 1 for line in self.lines.values())

    def statuses(self) -> Iterable[ItemStatus]:
        return (decode_status(line) for line in self.lines.values())


def page_entity(partition: str, page: Page) -> dict[str, Any]:
    text = "\n".join(page.lines[graph_id] for graph_id in sorted(page.lines))
    entity: dict[str, Any] = {"PartitionKey": partition, "RowKey": page_key(page.prefix)}
    for start in range(0, len(text), PART_CHARS):
        entity[f"Items{start // PART_CHARS}"] = text[start : start + PART_CHARS]
    return entity


def page_from_entity(entity: Mapping[str, Any], etag: str | None) -> Page:
    parts: list[str] = []
    while (part := entity.get(f"Items{len(parts)}")) is not None:
        parts.append(part)
    text = "".join(parts)
    page = Page(str(entity["RowKey"])[len(PAGE_KEY) :], etag)
    for line in text.split("\n") if text else ():
        graph_id = json.loads(line)[0]  # a few hundred per page at most; decoded fully on load
        page.lines[graph_id] = line
    return page


def leaf(pages: Mapping[str, Page], item_slot: str) -> str:
    """The prefix of the page that holds a slot (pages cover every slot once; none: the root, new)."""
    for length in range(SLOT_DIGITS + 1):
        if item_slot[:length] in pages:
            return item_slot[:length]
    if pages:
        raise ValueError(f"the pages do not cover slot {item_slot}")
    return ""


@dataclass(frozen=True)
class Unit:
    """Writes that must commit together: a page rewritten or created, or a page split into its children
    (the page deleted and the children inserted in one transaction)."""

    stored: Page | None  # the stored page this rewrites or splits; None: a page created where none was
    pages: tuple[Page, ...]  # the pages there after it

    @property
    def split(self) -> bool:
        stored = self.stored
        return len(self.pages) != 1 or (stored is not None and stored.prefix != self.pages[0].prefix)

    @property
    def creates(self) -> bool:
        """A page row appears (the partition's marker goes along in the same transaction)."""
        return self.stored is None or self.split

    @property
    def chars(self) -> int:
        return sum(page.chars for page in self.pages)

    @property
    def operation_count(self) -> int:
        return len(self.pages) + (1 if self.split and self.stored is not None else 0)

    def operations(self, partition: str) -> list[Operation]:
        """The unit's operations; those that store a page (Insert, Replace) come in `pages` order."""
        if not self.split:
            entity = page_entity(partition, self.pages[0])
            return [Insert(entity) if self.stored is None else Replace(entity, self._etag())]
        inserts: list[Operation] = [Insert(page_entity(partition, page)) for page in self.pages]
        if self.stored is None:
            return inserts
        return [Delete(partition, page_key(self.stored.prefix), self._etag()), *inserts]

    def _etag(self) -> str:
        assert self.stored is not None and self.stored.etag is not None
        return self.stored.etag


def changed_pages(
    pages: Mapping[str, Page], upserts: Sequence[ItemStatus], deletes: Sequence[str]
) -> list[Unit]:
    """The writes that apply `deletes`, then `upserts` (the last of an id wins), to `pages`: one unit per
    page whose content changes, a split where a page outgrows `PAGE_CHARS`. `pages` is not modified."""
    touched: dict[str, Page] = {}

    def page_for(graph_id: str) -> Page:
        prefix = leaf(pages, slot(graph_id))
        if prefix not in touched:
            stored = pages.get(prefix)
            touched[prefix] = Page(prefix, None, dict(stored.lines)) if stored else Page(prefix)
        return touched[prefix]

    for graph_id in deletes:
        page_for(graph_id).lines.pop(graph_id, None)
    for status in upserts:
        page_for(status.graph_id).lines[status.graph_id] = encode_status(status)
    units: list[Unit] = []
    for prefix, page in touched.items():
        stored = pages.get(prefix)
        if stored is not None and stored.lines == page.lines:
            continue  # already so (a redelivered job)
        if stored is None and not page.lines:
            continue  # deletes of ids never stored
        grown = page.chars > PAGE_CHARS and len(prefix) < SLOT_DIGITS
        units.append(Unit(stored, tuple(_split(page)) if grown else (page,)))
    return units


def _split(page: Page) -> list[Page]:
    """All sixteen children, each split again while still too large."""
    children = {digit: Page(page.prefix + digit) for digit in HEX}
    for graph_id, line in page.lines.items():
        children[slot(graph_id)[len(page.prefix)]].lines[graph_id] = line
    leaves: list[Page] = []
    for child in children.values():
        if child.chars > PAGE_CHARS and len(child.prefix) < SLOT_DIGITS:
            leaves += _split(child)
        else:
            leaves.append(child)
    return leaves
