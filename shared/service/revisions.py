"""What the host API's revisioned resources share (appointments, tasks): the host's version stored as a new
revision of its row, the revision as the ETag, `If-Match` making a PUT or DELETE conditional, and the row
saved over a concurrent writer's (a few attempts, then 409 naming the resource's id)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

from shared.domain.tenants import Tenant
from shared.service.errors import AlreadyExists, Conflict, PreconditionFailed, StaleWrite
from shared.service.retries import Update, update_optimistically
from shared.service.tenants import TenantPorts, get_tenant

R = TypeVar("R")

SAVE_ATTEMPTS: Final = 5


def revision_etag(revision: int) -> str:
    """The API's ETag: the revision (a write's progress does not change it)."""
    return f'"{revision}"'


def check_if_match(if_match: str | None, revision: int | None, what: str) -> None:
    """`If-Match` against the current revision (None: `what` does not exist, or is deleted)."""
    if if_match is None:
        return
    if revision is None:
        raise PreconditionFailed("If-Match", f"the {what} does not exist")
    if if_match.strip() != "*" and if_match.strip().removeprefix("W/") != revision_etag(revision):
        raise PreconditionFailed("If-Match", f"the {what} is at revision {revision}")


async def connected_tenant(services: TenantPorts, tenant_id: str, what: str) -> Tenant:
    """The tenant, which must be connected for `what` (plural) to be written."""
    tenant = await get_tenant(services, tenant_id)
    if not tenant.state.connected:
        raise Conflict("tenant_id", f"the tenant is {tenant.state.value}; {what} need a connected tenant")
    return tenant


async def save_revision(
    read: Callable[[], Awaitable[R | None]],
    revised: Callable[[R | None], R | None],
    save: Callable[[R], Awaitable[R]],
    *,
    field: str,
    what: str,
) -> Update[R | None, R]:
    """Read the row, revise it (None: nothing to save), save it guarded by its etag; again when another
    writer saved it meanwhile (or inserted it first)."""
    return await update_optimistically(
        read,
        revised,
        save,
        attempts=SAVE_ATTEMPTS,
        races=(StaleWrite, AlreadyExists),
        contended=Conflict(field, f"the {what} is being changed concurrently; retry"),
    )
