"""A tenant's row as every use case reads and changes it: found or 404, changed on a fresh read when a
worker saved it meanwhile, stored new with its directory's claim, moved to `connecting`, marked
`consent_revoked`, and its progress.

The use cases live beside it: connecting by admin consent (`tenant_consent.py`), by the customer's own
app (`customer_app.py`), disconnecting (`tenant_disconnect.py`) and settings (`tenant_settings.py`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Final, Protocol

from shared.domain.progress import Progress, ProgressOfUser, progress
from shared.domain.tenants import Tenant, TenantState
from shared.observability import get_logger
from shared.service import jobs
from shared.service.context import UsesClock, UsesJobs, UsesTenants, UsesUsers
from shared.service.errors import (
    AlreadyExists,
    Conflict,
    DirectoryTaken,
    InvalidInput,
    NotFound,
    StaleWrite,
)
from shared.service.publishing import PublishPorts, publish
from shared.service.records import Change
from shared.service.retries import update_optimistically
from shared.service.user_queries import decode_cursor, encode_cursor

log = get_logger("tenants")


class TenantPorts(UsesTenants, Protocol):
    """Reading and saving a tenant's row."""


class TenantEventPorts(TenantPorts, PublishPorts, UsesClock, Protocol):
    """Changing a tenant's state and telling the host."""


class ConnectPorts(TenantEventPorts, UsesJobs, Protocol):
    """Marking a tenant connected, which queues its discovery."""


class ProgressPorts(UsesUsers, UsesClock, Protocol): ...


class TenantListPorts(ProgressPorts, UsesTenants, Protocol): ...


TENANT_PAGE: Final = 50  # tenants a page shows unless asked
TENANT_ORDER: Final = "tenant_id"  # the one order a page of tenants has (its cursor names it)
MAX_TENANT_PAGE: Final = 100  # each tenant's progress reads its users: a page stays a few thousand rows
PROGRESS_AT_ONCE: Final = 8  # a page's tenants whose users are read at once


@dataclass(frozen=True, slots=True)
class TenantPage:
    tenants: list[tuple[Tenant, Progress]]
    next_cursor: str | None
    total: int  # every tenant, not only this page's


async def tenants_page(services: TenantListPorts, page_size: int, cursor: str | None) -> TenantPage:
    """A page of the tenants in tenant id order, each with its progress, read for this page's tenants only
    (a tenant's progress reads its users: every tenant's on one request would not answer at 10,000)."""
    if not 1 <= page_size <= MAX_TENANT_PAGE:
        raise InvalidInput("page_size", f"must be between 1 and {MAX_TENANT_PAGE}")
    after = _tenant_after(cursor) if cursor is not None else None
    listed = sorted(await services.tenants.list(), key=lambda t: t.tenant_id)
    selected = [t for t in listed if after is None or t.tenant_id > after]
    page = selected[:page_size]
    gate = asyncio.Semaphore(PROGRESS_AT_ONCE)

    async def shown(tenant: Tenant) -> tuple[Tenant, Progress]:
        async with gate:
            return tenant, await tenant_progress(services, tenant)

    more = len(selected) > page_size
    next_cursor = encode_cursor(TENANT_ORDER, page[-1].tenant_id) if more and page else None
    return TenantPage(list(await asyncio.gather(*(shown(t) for t in page))), next_cursor, len(listed))


def _tenant_after(cursor: str) -> str:
    order, tenant_id = decode_cursor(cursor)
    if order != TENANT_ORDER:
        raise InvalidInput("cursor", "is not a cursor this API returned")
    return tenant_id


@dataclass(frozen=True, slots=True)
class Connection:
    tenant: Tenant
    consent_url: str | None = None


async def get_tenant(services: TenantPorts, tenant_id: str) -> Tenant:
    tenant = await services.tenants.get(tenant_id)
    if tenant is None:
        raise NotFound("tenant", tenant_id, "tenant_id")
    return tenant


def directory_taken(holder: str, state: TenantState | None) -> Conflict:
    where = f" ({state.value})" if state else ""
    return Conflict(
        "tenant_id",
        f"this organisation is already connected as tenant '{holder}'{where}; use that tenant, "
        "or disconnect it first",
    )


async def store_new(services: TenantPorts, tenant: Tenant) -> Tenant:
    """Store a new tenant (or a disconnected one's new start), claiming its directory: a second tenant key
    for a connected directory, even one racing this request, gets a 409 naming the holder."""
    try:
        if tenant.etag is None:
            return await services.tenants.add(tenant)
        return await services.tenants.reconnect(tenant)
    except (AlreadyExists, StaleWrite):
        raise Conflict("tenant_id", "this tenant was created or changed meanwhile; retry") from None
    except DirectoryTaken as taken:
        holder = await services.tenants.get(taken.holder)
        raise directory_taken(taken.holder, holder.state if holder else None) from None


async def mark_connected(services: ConnectPorts, tenant: Tenant, how: str) -> Tenant:
    now = services.clock.now()
    tenant = replace(tenant.with_state(TenantState.CONNECTING, now), connected_at=now)
    tenant = await services.tenants.save(tenant)
    await publish(
        services, tenant.tenant_id, [Change("tenant.connected", tenant.tenant_id, {"auth_mode": how}, now)]
    )
    await services.jobs.enqueue([jobs.discover(tenant.tenant_id)])
    log.info("tenant connected (%s); discovery queued", how)
    return tenant


SAVE_ATTEMPTS: Final = 5  # a change re-applied on a fresh read this often (workers move a tenant's state)


async def save_tenant_change(
    services: TenantPorts, tenant_id: str, change: Callable[[Tenant], Tenant | None]
) -> tuple[Tenant, bool]:
    """Apply `change` to a fresh read of the tenant and save it. When a worker saved the row in between (a
    migration finishing), read and apply it again rather than fail. `change` answers None when there is
    nothing to save, and may raise. Answers the tenant (as saved, or as read) and whether it was saved."""
    done = await update_optimistically(
        lambda: get_tenant(services, tenant_id),
        change,
        services.tenants.save,
        attempts=SAVE_ATTEMPTS,
        contended=Conflict("tenant_id", "the tenant is being changed concurrently; retry"),
    )
    return done.latest, done.saved is not None


async def mark_consent_revoked(services: TenantEventPorts, tenant_id: str, reason: str) -> None:
    """Graph refuses the tenant itself. Record it once (no retry storm: jobs check the state first)."""

    def revoked(tenant: Tenant) -> Tenant | None:
        if not tenant.state.connected:
            return None
        return tenant.with_state(TenantState.CONSENT_REVOKED, services.clock.now(), error=reason)

    try:
        _, saved = await save_tenant_change(services, tenant_id, revoked)
    except (NotFound, Conflict):
        return  # gone, or still contended after every attempt: the next job notices it again
    if saved:
        await publish(
            services,
            tenant_id,
            [Change("tenant.consent_revoked", tenant_id, {"reason": reason}, services.clock.now())],
        )
        log.warning("consent revoked: %s", reason)


async def tenant_progress(services: ProgressPorts, tenant: Tenant, *, kept: bool = False) -> Progress:
    """The migration's progress: from the users read now (only the properties progress uses), or for the
    console's polling (`kept`) from its listing of whole users, a few seconds old at most."""
    users: Sequence[ProgressOfUser]
    if kept:
        users = await services.users.console_users(tenant.tenant_id)
    else:
        users = await services.users.list_progress(tenant.tenant_id)
    return progress(
        tenant.state, users, tenant.connected_at, services.clock.now(), scope=tenant.settings.user_scope
    )
