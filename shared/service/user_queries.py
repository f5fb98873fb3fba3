"""Filtering, searching, sorting and keyset paging of a tenant's users (pure; storage brings the rows)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Final

from shared.domain.users import SWITCH_NAMES, UserRecord
from shared.service.errors import InvalidInput
from shared.service.records import UserPage, UserQuery

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
SORT_KEYS: Final[dict[str, Callable[[UserRecord], str]]] = {
    "display_name": lambda u: (u.staff.display_name or u.staff.upn or u.staff.email or "").casefold(),
    "email": lambda u: (u.staff.email or u.staff.upn or "").casefold(),
    "staff_id": lambda u: u.staff_id,
    "match": lambda u: u.match.value,
    "state": lambda u: u.sync_state.value,
    "last_sync": lambda u: (u.last_sync_at or _EPOCH).isoformat(),
    "subscription_expires": lambda u: (u.subscription_expires_at or _EPOCH).isoformat(),
}
MAX_PAGE_SIZE: Final = 500


def encode_cursor(sort_value: str, staff_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([sort_value, staff_id]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)
        if isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value):
            return value[0], value[1]
    except (ValueError, RecursionError):  # RecursionError: JSON nested too deeply
        pass
    raise InvalidInput("cursor", "is not a cursor this API returned")


SWITCH_STATES: Final = {"on": True, "off": False}


def parse_switch_filter(value: str | None) -> tuple[tuple[str, bool], ...]:
    """`switch=calendar_to_outlook:off` (several: comma-separated, every one must hold)."""
    if not value:
        return ()
    found: list[tuple[str, bool]] = []
    for part in value.split(","):
        name, _, state = part.strip().partition(":")
        if name not in SWITCH_NAMES or state not in SWITCH_STATES:
            raise InvalidInput(
                "switch",
                f"must be <switch>:on or <switch>:off, comma-separated; switches: {', '.join(SWITCH_NAMES)}",
            )
        found.append((name, SWITCH_STATES[state]))
    return tuple(found)


def page_users(rows: Sequence[UserRecord], query: UserQuery) -> UserPage:
    key = SORT_KEYS.get(query.sort)
    if key is None:
        raise InvalidInput("sort", f"must be one of: {', '.join(SORT_KEYS)}")
    if not 1 <= query.page_size <= MAX_PAGE_SIZE:
        raise InvalidInput("page_size", f"must be between 1 and {MAX_PAGE_SIZE}")
    selected = [u for u in rows if _admits(u, query)]
    selected.sort(key=lambda u: (key(u), u.staff_id), reverse=query.descending)
    if query.cursor:
        after = decode_cursor(query.cursor)
        if query.descending:
            selected = [u for u in selected if (key(u), u.staff_id) < after]
        else:
            selected = [u for u in selected if (key(u), u.staff_id) > after]
    page = selected[: query.page_size]
    more = len(selected) > query.page_size
    next_cursor = encode_cursor(key(page[-1]), page[-1].staff_id) if more and page else None
    total = sum(1 for u in rows if _admits(u, query))
    return UserPage(page, next_cursor, total)


def _admits(user: UserRecord, query: UserQuery) -> bool:
    if query.match and user.match.value != query.match:
        return False
    if query.state and user.sync_state.value != query.state:
        return False
    if query.teams and (user.teams.value if user.teams else None) != query.teams:
        return False
    if any(getattr(user.staff.switches, name) is not on for name, on in query.switches):
        return False
    if query.search:
        needle = query.search.casefold()
        haystack = (user.staff_id, user.staff.display_name, user.staff.email or "", user.staff.upn or "")
        if not any(needle in value.casefold() for value in haystack):
            return False
    return True
