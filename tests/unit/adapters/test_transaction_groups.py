"""Grouping writes into entity-group transactions (shared/adapters/tables/transactions.in_transactions)."""

from __future__ import annotations

from shared.adapters.tables.transactions import MAX_OPERATIONS, in_transactions


def test_groups_keep_order_and_room_for_the_callers_row() -> None:
    groups = in_transactions(range(250), lambda _: 10, reserved=1)
    assert [len(g) for g in groups] == [99, 99, 52]
    assert [item for group in groups for item in group] == list(range(250))


def test_operations_and_characters_both_bound_a_group_and_an_oversized_item_goes_alone() -> None:
    sizes = {"a": 40, "b": 50, "c": 500, "d": 5, "e": 5}
    ops = {"a": 17, "b": 17, "c": 1, "d": 80, "e": 3}
    groups = in_transactions("abcde", sizes.__getitem__, ops.__getitem__, max_chars=100)
    assert groups == [["a", "b"], ["c"], ["d", "e"]]
    assert all(sum(ops[i] for i in g) <= MAX_OPERATIONS for g in groups)
