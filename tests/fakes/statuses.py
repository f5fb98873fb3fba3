"""Item statuses for tests: a plain one per Graph id, varied by a number, any field overridden."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.domain.planner import ItemStatus

T0 = datetime(2026, 11, 22, 9, 0, 0, 123456, tzinfo=UTC)


def item_status(graph_id: str, n: int = 0, **changes: Any) -> ItemStatus:
    base = ItemStatus(
        graph_id=graph_id,
        change_key=f"ck{n}",
        ical_uid=f"uid-{graph_id}",
        content_hash=f"hash{n}",
        ends_at=T0 + timedelta(hours=n),
        admitted=True,
    )
    return replace(base, **changes)
