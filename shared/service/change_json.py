"""The JSON shape of one change: the same in the pull feed (`GET .../changes`) and the host webhook."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.service.ports import Change


def iso(value: datetime | None) -> str | None:
    """ISO 8601 with a `Z` for UTC; None stays None."""
    return value.isoformat().replace("+00:00", "Z") if value else None


def change_json(change: Change) -> dict[str, Any]:
    return {
        "sequence": change.sequence,
        "type": change.type,
        "tenant_id": change.tenant_id,
        "staff_id": change.staff_id,
        "occurred_at": iso(change.occurred_at),
        "data": change.data,
    }
