"""The JSON shape of one change: the same in the pull feed (`GET .../changes`) and the host webhook, and
the form the feed stores it in (that shape less the tenant and the sequence, which the row says), at most
`MAX_CHANGE_CHARS` long."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final

from shared.service.errors import ChangeTooLarge
from shared.service.records import Change

# One change as the feed stores it (compact ASCII JSON) may be at most this long: a table entity holds
# 1 MiB, 524,288 UTF-16 characters, keys and property names included. The planner keeps events inside it
# (see `BODY_LIMIT`).
MAX_CHANGE_CHARS: Final = 480_000


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


def encoded_change(change: Change) -> str:
    """One change as the feed stores it: the JSON object `change_json` gives, without the tenant and the
    sequence number, in compact ASCII (so its length is what is stored), its time in UTC."""
    entry = {
        "type": change.type,
        "staff_id": change.staff_id,
        "occurred_at": iso(change.occurred_at.astimezone(UTC)),
        "data": change.data,
    }
    return json.dumps(entry, separators=(",", ":"), default=str, ensure_ascii=True)


def decoded_change(tenant_id: str, encoded: str, sequence: int | None = None) -> Change:
    """A change from its `encoded_change` text."""
    entry = json.loads(encoded)
    return Change(
        type=entry["type"],
        tenant_id=tenant_id,
        data=entry["data"],
        occurred_at=datetime.fromisoformat(entry["occurred_at"]).astimezone(UTC),
        staff_id=entry["staff_id"],
        sequence=sequence,
    )


def stored_change_json(tenant_id: str, sequence: int, encoded: str) -> str:
    """A stored change as the JSON text of its `change_json` shape, without decoding it: deliveries and
    the pull feed pass the stored text on."""
    return f'{{"sequence":{sequence},"tenant_id":{json.dumps(tenant_id)},{encoded[1:]}'


def check_change_sizes(encoded: Sequence[str], changes: Sequence[Change]) -> None:
    for text, change in zip(encoded, changes, strict=True):
        if len(text) > MAX_CHANGE_CHARS:
            raise ChangeTooLarge(
                f"a {change.type} change of {len(text)} characters is over the feed's {MAX_CHANGE_CHARS}"
            )
