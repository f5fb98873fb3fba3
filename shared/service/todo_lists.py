"""The To Do list a staff member's host tasks go to: the staff member's own `todo_list_name` (staff PUT),
else the tenant's. Found by name in their mailbox, made when missing, its id kept on the user row (shown in
GET /users). When To Do refuses (no To Do for the mailbox, a permission missing) the row keeps a reason a
person can act on; the calendar's state is not touched."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Protocol, TypeAlias

from shared.domain.tenants import Tenant
from shared.domain.users import UserRecord
from shared.observability import get_logger
from shared.service.context import UsesClock, UsesTodo, UsesUsers
from shared.service.errors import MailboxUnavailable, StaleWrite, TodoRefused
from shared.service.ports.todo import TodoListRef
from shared.service.retries import update_optimistically

log = get_logger("todo_lists")
Change: TypeAlias = Callable[[UserRecord], UserRecord | None]

SAVE_ATTEMPTS = 5


class TodoListPorts(UsesTodo, UsesUsers, UsesClock, Protocol):
    """Finding or making a staff member's To Do list: To Do, the user row, the clock."""


class TodoListUnavailable(Exception):
    """The list cannot be found or made; `reason` is on the user row."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def list_name(tenant: Tenant, user: UserRecord) -> str:
    return user.staff.todo_list_name or tenant.settings.todo_list_name


def stored_list(tenant: Tenant, user: UserRecord) -> str | None:
    """The list id the row holds for the name that applies now (None: to be found or made)."""
    if user.todo_list_id and user.todo_list_name == list_name(tenant, user):
        return user.todo_list_id
    return None


async def ensure_list(
    services: TodoListPorts,
    tenant: Tenant,
    user: UserRecord,
    *,
    stale: str | None = None,
    defer: bool = False,
) -> tuple[UserRecord, str]:
    """The user row and its list's id, finding or making the list when the row holds none for the name
    that applies (or holds `stale`, a list Graph said is gone). Raises TodoListUnavailable (the reason
    saved on the row), RateLimited and TenantAccessError. With `defer`, a list that was found (not made)
    is only laid on the row answered, for the caller's own save (`with_list_of`); a list made is saved at
    once, so two workers making one keep the first stored."""
    assert user.graph_user_id is not None
    name = list_name(tenant, user)
    held = stored_list(tenant, user)
    if held is not None and held != stale:
        return user, held
    try:
        found = await services.todo.find_list(tenant, user.graph_user_id, name)
        made = found is None
        if found is None:
            found = await services.todo.create_list(tenant, user.graph_user_id, name)
    except (TodoRefused, MailboxUnavailable) as refused:
        reason = _reason(name, refused)
        await _save(services, user, lambda row: _with_reason(row, reason))
        raise TodoListUnavailable(reason) from refused
    kept = found
    if defer and not made:
        laid = _with_list(user, name, kept, stale)
        return (laid or user), (laid or user).todo_list_id or found.id
    saved = await _save(services, user, lambda row: _with_list(row, name, kept, stale))
    chosen = saved.todo_list_id or found.id
    if made and chosen != found.id:  # another worker made one too, and stored it first
        await services.todo.delete_list(tenant, user.graph_user_id, found.id)
    if made:
        log.info("made the To Do list %r for %s/%s", name, user.tenant_id, user.staff_id)
    return saved, chosen


def with_list_of(row: UserRecord, ours: UserRecord) -> UserRecord:
    """`row` with the list fields of `ours` (a row `ensure_list(defer=True)` answered), unless `row` holds a
    list for that name already (another worker's, stored first: it is kept) or the staff member's list name
    changed meanwhile (the next run finds the list now named)."""
    if ours.todo_list_id is None or ours.todo_list_name is None:
        return row
    if row.staff.todo_list_name != ours.staff.todo_list_name:
        return row
    laid = _with_list(row, ours.todo_list_name, TodoListRef(ours.todo_list_id, ours.todo_list_name), None)
    return laid or row


def _reason(name: str, refused: Exception) -> str:
    said = getattr(refused, "reason", None) or str(refused)
    return (
        f"the To Do list {name!r} cannot be found or made in this mailbox ({said}); check that the user has "
        "an Exchange Online mailbox with To Do and that the app's consent includes Tasks.ReadWrite.All, then "
        "resync the user"
    )


def _with_list(row: UserRecord, name: str, found: TodoListRef, stale: str | None) -> UserRecord | None:
    held = row.todo_list_id
    if held and held != stale and row.todo_list_name == name and row.todo_list_reason is None:
        return None  # stored already (by another worker first: theirs is kept)
    if (row.todo_list_id, row.todo_list_name, row.todo_list_reason) == (found.id, name, None):
        return None
    return replace(row, todo_list_id=found.id, todo_list_name=name, todo_list_reason=None)


def _with_reason(row: UserRecord, reason: str) -> UserRecord | None:
    if row.todo_list_reason == reason and row.todo_list_id is None:
        return None
    return replace(row, todo_list_id=None, todo_list_reason=reason)


async def _save(services: TodoListPorts, user: UserRecord, change: Change) -> UserRecord:
    """The row with `change` saved (as it was given when the staff member was deleted meanwhile)."""

    async def read() -> UserRecord | None:
        return await services.users.get(user.tenant_id, user.staff_id)

    def changed(row: UserRecord | None) -> UserRecord | None:
        return change(row) if row is not None else None

    done = await update_optimistically(
        read, changed, services.users.save, attempts=SAVE_ATTEMPTS, races=(StaleWrite,)
    )
    return done.latest or user
