"""The page layout of a user's item statuses (shared/adapters/tables/item_statuses.py), without storage."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.adapters.tables import item_statuses
from shared.adapters.tables.item_statuses import (
    HEX,
    Page,
    Unit,
    changed_pages,
    decode_status,
    encode_status,
    leaf,
    page_entity,
    page_from_entity,
    slot,
)
from shared.adapters.tables.transactions import Delete, Insert, Replace
from shared.domain.planner import ItemStatus
from tests.fakes.statuses import item_status as status

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
PARTITION = "contoso|anna"


def stored(units: list[Unit], pages: dict[str, Page] | None = None) -> dict[str, Page]:
    """The pages after the units committed (ETags made up)."""
    after = dict(pages or {})
    for unit in units:
        if unit.stored is not None:
            after.pop(unit.stored.prefix)
        for page in unit.pages:
            after[page.prefix] = replace(page, etag=f"etag-{page.prefix}")
    return after


def statuses(pages: dict[str, Page]) -> dict[str, ItemStatus]:
    return {s.graph_id: s for page in pages.values() for s in page.statuses()}


def covers_every_slot_once(pages: dict[str, Page]) -> bool:
    prefixes = sorted(pages)
    if any(b.startswith(a) for a, b in itertools.pairwise(prefixes)):
        return False  # one page inside another
    return sum(16.0 ** -len(prefix) for prefix in prefixes) == 1.0


@given(
    graph_id=st.text(min_size=1),
    change_key=st.none() | st.text(),
    ical_uid=st.none() | st.text(),
    appointment_id=st.none() | st.text(min_size=1),
    series_master_id=st.none() | st.text(min_size=1),
    admitted=st.booleans(),
    written=st.booleans(),
    master=st.booleans(),
    minutes=st.integers(-(10**6), 10**6),
)
def test_a_status_line_round_trips_and_is_ascii(
    graph_id: str,
    change_key: str | None,
    ical_uid: str | None,
    appointment_id: str | None,
    series_master_id: str | None,
    admitted: bool,
    written: bool,
    master: bool,
    minutes: int,
) -> None:
    original = ItemStatus(
        graph_id=graph_id,
        change_key=change_key,
        ical_uid=ical_uid,
        content_hash="h",
        ends_at=(T0 + timedelta(minutes=minutes)).astimezone(timezone(timedelta(hours=5))),
        admitted=admitted,
        appointment_id=appointment_id,
        series_master_id=series_master_id,
        written=written,
        master=master,
    )
    line = encode_status(original)
    assert line.isascii() and "\n" not in line
    decoded = decode_status(line)
    assert decoded == original
    assert decoded.ends_at.tzinfo == UTC


def test_a_page_round_trips_through_its_entity_across_properties() -> None:
    page = Page("3a", None, {f"id{n}": encode_status(status(f"id{n}" + "x" * 300, n)) for n in range(300)})
    entity = page_entity(PARTITION, page)
    assert entity["RowKey"] == "p3a"
    assert len([name for name in entity if name.startswith("Items")]) > 1  # over one string property
    assert all(len(v) <= item_statuses.PART_CHARS for k, v in entity.items() if k.startswith("Items"))
    again = page_from_entity(entity, "etag")
    assert (again.prefix, again.etag) == ("3a", "etag")
    assert sorted(again.statuses(), key=lambda s: s.graph_id) == sorted(
        page.statuses(), key=lambda s: s.graph_id
    )


def test_a_first_write_creates_the_root_page_alone() -> None:
    units = changed_pages({}, [status(f"id{n}", n) for n in range(50)], ["never-stored"])
    assert len(units) == 1
    assert [type(op) for op in units[0].operations(PARTITION)] == [Insert]
    pages = stored(units)
    assert list(pages) == [""]
    assert statuses(pages) == {f"id{n}": status(f"id{n}", n) for n in range(50)}


def test_a_change_rewrites_only_its_page_with_its_etag() -> None:
    pages = stored(changed_pages({}, [status(f"id{n}", n) for n in range(50)], []))
    units = changed_pages(pages, [status("id7", 99)], ["id8"])
    [operation] = units[0].operations(PARTITION)
    assert isinstance(operation, Replace) and operation.etag == "etag-"
    after = statuses(stored(units, pages))
    assert after["id7"] == status("id7", 99) and "id8" not in after and len(after) == 49


def test_the_same_plan_again_writes_nothing() -> None:
    plan = ([status(f"id{n}", n) for n in range(50)], ["id3"])
    pages = stored(changed_pages({}, *plan))
    assert changed_pages(pages, *plan) == []
    assert changed_pages(pages, [], ["never-stored"]) == []


def test_a_page_that_outgrows_its_size_splits_into_all_sixteen_children(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(item_statuses, "PAGE_CHARS", 5_000)
    pages = stored(changed_pages({}, [status(f"id{n}", n) for n in range(20)], []))
    assert list(pages) == [""]

    units = changed_pages(pages, [status(f"new{n}", n) for n in range(60)], [])

    [unit] = units
    operations = unit.operations(PARTITION)
    assert isinstance(operations[0], Delete) and operations[0].etag == "etag-"  # the root, If-Match
    assert sorted(op.entity["RowKey"] for op in operations[1:] if isinstance(op, Insert)) == [
        f"p{d}" for d in HEX
    ]
    after = stored(units, pages)
    assert covers_every_slot_once(after)
    assert len(statuses(after)) == 80
    assert all(slot(s.graph_id).startswith(prefix) for prefix, page in after.items() for s in page.statuses())


def test_a_large_first_write_splits_as_deep_as_it_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(item_statuses, "PAGE_CHARS", 2_000)
    upserts = [status(f"id{n}", n) for n in range(400)]
    units = changed_pages({}, upserts, [])
    pages = stored(units)
    assert covers_every_slot_once(pages)
    assert any(len(prefix) == 2 for prefix in pages)
    assert all(page.chars <= 2_000 for page in pages.values())
    assert statuses(pages) == {s.graph_id: s for s in upserts}


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 300)), max_size=300))
def test_any_sequence_of_changes_keeps_one_cover_and_every_status(changes: list[tuple[bool, int]]) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(item_statuses, "PAGE_CHARS", 3_000)  # small pages: splits within a few hundred items
        pages: dict[str, Page] = {}
        expected: dict[str, ItemStatus] = {}
        for upsert, n in changes:
            if upsert:
                pages = stored(changed_pages(pages, [status(f"id{n}", len(expected))], []), pages)
                expected[f"id{n}"] = status(f"id{n}", len(expected))
            else:
                pages = stored(changed_pages(pages, [], [f"id{n}"]), pages)
                expected.pop(f"id{n}", None)
            assert not pages or covers_every_slot_once(pages)
        assert statuses(pages) == expected


def test_the_leaf_of_a_slot_is_the_page_whose_prefix_it_starts_with() -> None:
    pages = {d: Page(d) for d in HEX if d != "3"} | {f"3{d}": Page(f"3{d}") for d in HEX}
    assert leaf(pages, "3a" + "0" * 14) == "3a"
    assert leaf(pages, "f" + "0" * 15) == "f"
    assert leaf({}, "abc") == ""
    with pytest.raises(ValueError, match="do not cover"):
        leaf({"0": Page("0")}, "1" * 16)
