"""A users row read through a projection (`progress_from_entity`): a selected property the row lacks reads
the same whether the service leaves it out of the answer (Azurite) or answers it as null (Azure Tables, as
Azure/Azurite#2535 reports), and as the whole row's reading (`user_from_entity`) reads it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.adapters.tables.users import progress_from_entity, user_from_entity
from shared.domain.progress import UserProgress
from shared.domain.users import MatchStatus, SyncState

pytestmark = pytest.mark.unit

STORED = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def test_a_selected_property_answered_as_null_reads_as_one_left_out() -> None:
    left_out = {"Match": "pending", "UpdatedAt": STORED}
    as_null = {**left_out, "SyncState": None, "MigratedAt": None}

    expected = UserProgress(MatchStatus.PENDING, SyncState.PENDING, None, STORED)
    assert progress_from_entity(as_null) == progress_from_entity(left_out) == expected
    whole = user_from_entity({"PartitionKey": "contoso.example", "RowKey": "s1", **left_out})
    assert (whole.match, whole.sync_state, whole.migrated_at, whole.updated_at) == (
        expected.match,
        expected.sync_state,
        expected.migrated_at,
        expected.updated_at,
    )
