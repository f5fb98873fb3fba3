"""Connecting a tenant (admin consent or the customer's own app), reauthorizing and disconnecting."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from enum import StrEnum
from typing import Any, Final

from shared.domain.progress import Progress, progress
from shared.domain.tenants import AuthMode, CustomerApp, Tenant, TenantState, secret_name
from shared.observability import bound, get_logger
from shared.service import jobs
from shared.service.commands import CreateTenant, CustomerAppCredential, parse_settings
from shared.service.context import Services
from shared.service.errors import (
    AlreadyExists,
    Conflict,
    DirectoryTaken,
    InvalidInput,
    NotFound,
    StaleWrite,
    TenantAccessError,
)
from shared.service.publishing import publish
from shared.service.records import Change, ConsentState
from shared.service.subscriptions import remove_tenant_subscriptions

log = get_logger("tenants")
CONSENT_STATE_TTL: Final = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Connection:
    tenant: Tenant
    consent_url: str | None = None


def _state_hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


async def get_tenant(services: Services, tenant_id: str) -> Tenant:
    tenant = await services.tenants.get(tenant_id)
    if tenant is None:
        raise NotFound("tenant", tenant_id, "tenant_id")
    return tenant


async def create_tenant(services: Services, command: CreateTenant) -> Connection:
    """Create the tenant, or reconnect a disconnected one under the same key (a new row over the old one:
    its feed numbering goes on, and a customer secret Key Vault kept soft-deleted is recovered)."""
    existing = await services.tenants.get(command.tenant_id)
    if existing is not None and existing.state is TenantState.DISCONNECTING:
        raise Conflict("tenant_id", "this tenant is still disconnecting; retry shortly")
    if existing is not None and existing.state is not TenantState.DISCONNECTED:
        raise Conflict("tenant_id", "this tenant already exists; reauthorize or disconnect it instead")
    directory_id = await services.directory.resolve_directory_id(command.tenant_id)
    if directory_id is None:
        raise InvalidInput("tenant_id", "Microsoft Entra ID knows no tenant by this id or domain", status=422)
    for other in await services.tenants.list():  # also finds tenants stored before directories were claimed
        same = other.directory_id == directory_id and other.tenant_id != command.tenant_id
        if same and other.state is not TenantState.DISCONNECTED:
            raise _directory_taken(other.tenant_id, other.state)
    if existing is not None:  # a job that was running at the purge may have written rows since
        await _purge_rows(services, command.tenant_id)
    now = services.clock.now()
    tenant = Tenant(
        tenant_id=command.tenant_id,
        directory_id=directory_id,
        display_name=command.display_name,
        auth_mode=command.auth_mode,
        state=TenantState.PENDING_CONSENT,
        settings=command.settings,
        created_at=existing.created_at if existing else now,
        updated_at=now,
        etag=existing.etag if existing else None,
    )
    with bound(tenant=tenant.tenant_id):
        if command.customer_app is not None:
            return await _connect_customer_app(services, tenant, command.customer_app, create=True)
        tenant = await _store_new(services, tenant)
        log.info("tenant %s; waiting for admin consent", "reconnecting" if existing else "created")
        return Connection(tenant, await _new_consent_url(services, tenant))


def _directory_taken(holder: str, state: TenantState | None) -> Conflict:
    where = f" ({state.value})" if state else ""
    return Conflict(
        "tenant_id",
        f"this organisation is already connected as tenant '{holder}'{where}; use that tenant, "
        "or disconnect it first",
    )


async def _store_new(services: Services, tenant: Tenant) -> Tenant:
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
        raise _directory_taken(taken.holder, holder.state if holder else None) from None


async def _new_consent_url(services: Services, tenant: Tenant) -> str:
    state = secrets.token_urlsafe(32)
    expires = services.clock.now() + CONSENT_STATE_TTL
    await services.consent_states.add(ConsentState(_state_hash(state), tenant.tenant_id, expires))
    return services.config.consent_url(tenant.directory_id, state)


async def _connect_customer_app(
    services: Services, tenant: Tenant, credential: CustomerAppCredential, *, create: bool
) -> Connection:
    """Validate the customer's app by getting a token with it, then keep its secret in Key Vault only."""
    try:
        await services.customer_apps.validate(
            tenant.directory_id, credential.client_id, credential.client_secret
        )
    except TenantAccessError as error:
        raise InvalidInput(
            "auth.client_secret", f"the app could not sign in: {error.reason}", status=422
        ) from None
    now = services.clock.now()
    if credential.secret_expires_at is not None and credential.secret_expires_at <= now:
        raise InvalidInput("auth.client_secret_expires_at", "is in the past", status=422)
    tenant = replace(
        tenant,
        auth_mode=AuthMode.CUSTOMER_APP,
        customer_app=CustomerApp(credential.client_id, credential.secret_expires_at),
        credential_warning_sent_at=None,
    )
    if create:
        tenant = await _store_new(services, tenant)
    await services.secrets.set(
        secret_name(tenant.directory_id), credential.client_secret, expires_on=credential.secret_expires_at
    )
    tenant = await _connected(services, tenant, "customer_app")
    return Connection(tenant)


async def _connected(services: Services, tenant: Tenant, how: str) -> Tenant:
    now = services.clock.now()
    tenant = replace(tenant.with_state(TenantState.CONNECTING, now), connected_at=now)
    tenant = await services.tenants.save(tenant)
    await publish(
        services, tenant.tenant_id, [Change("tenant.connected", tenant.tenant_id, {"auth_mode": how}, now)]
    )
    await services.jobs.enqueue([jobs.discover(tenant.tenant_id)])
    log.info("tenant connected (%s); discovery queued", how)
    return tenant


class ConsentResult(StrEnum):
    CONNECTED = "connected"
    DECLINED = "declined"
    FAILED = "failed"
    INVALID_STATE = "invalid_state"
    EXPIRED_STATE = "expired_state"
    WRONG_TENANT = "wrong_tenant"
    ACCESS_FAILED = "access_failed"


@dataclass(frozen=True, slots=True)
class ConsentCallback:
    state: str | None
    tenant: str | None
    admin_consent: str | None
    error: str | None
    error_description: str | None


@dataclass(frozen=True, slots=True)
class ConsentOutcome:
    result: ConsentResult
    message: str  # plain words for the admin
    tenant: Tenant | None = None


DECLINED_ERRORS: Final = {"access_denied", "consent_required", "permission_denied"}


async def complete_consent(services: Services, callback: ConsentCallback) -> ConsentOutcome:
    """The admin came back from Entra. A valid state moves its tenant on; anything else changes nothing
    but the tenant's recorded reason (when the state names a tenant)."""
    if not callback.state or len(callback.state) > 512:
        return ConsentOutcome(ConsentResult.INVALID_STATE, _INVALID_LINK)
    consent = await services.consent_states.take(_state_hash(callback.state))
    if consent is None:
        log.warning("consent callback with an unknown or already used state")
        return ConsentOutcome(ConsentResult.INVALID_STATE, _INVALID_LINK)
    tenant = await services.tenants.get(consent.tenant_id)
    if tenant is None or tenant.state.gone:
        return ConsentOutcome(ConsentResult.INVALID_STATE, _INVALID_LINK)
    with bound(tenant=tenant.tenant_id):
        now = services.clock.now()
        if consent.expires_at <= now:
            return await _consent_failed(
                services, tenant, ConsentResult.EXPIRED_STATE, "The consent link expired. Ask for a new link."
            )
        if callback.error:
            declined = callback.error in DECLINED_ERRORS
            detail = _first_line(callback.error_description) or callback.error
            message = (
                f"Consent was declined or cancelled: {detail}"
                if declined
                else f"Microsoft Entra ID reported an error: {detail}"
            )
            return await _consent_failed(
                services, tenant, ConsentResult.DECLINED if declined else ConsentResult.FAILED, message
            )
        if (callback.admin_consent or "").lower() != "true":
            return await _consent_failed(
                services, tenant, ConsentResult.FAILED, "Microsoft Entra ID did not confirm the consent."
            )
        if (callback.tenant or "").lower() != tenant.directory_id:
            return await _consent_failed(
                services,
                tenant,
                ConsentResult.WRONG_TENANT,
                "Consent was given for a different organisation than the one being connected. "
                "Sign in as an administrator of the right organisation and use a new link.",
            )
        try:
            await services.directory.check_access(tenant)
        except TenantAccessError as error:
            return await _consent_failed(
                services,
                tenant,
                ConsentResult.ACCESS_FAILED,
                f"Consent was recorded, but the connector still cannot read the directory: {error.reason}",
            )
        if tenant.state.connected:
            return ConsentOutcome(ConsentResult.CONNECTED, "This organisation is already connected.", tenant)
        tenant = await _connected(services, tenant, "admin_consent")
        return ConsentOutcome(ConsentResult.CONNECTED, "Your organisation is connected.", tenant)


_INVALID_LINK: Final = (
    "This consent link is not valid or has already been used. Ask the application for a new consent link."
)


def _first_line(text: str | None) -> str:
    return (text or "").replace("\r", "").split("\n", 1)[0].strip()[:500]


async def _consent_failed(
    services: Services, tenant: Tenant, result: ConsentResult, message: str
) -> ConsentOutcome:
    log.info("consent did not complete: %s", result)
    now = services.clock.now()
    for _ in range(3):
        try:
            tenant = await services.tenants.save(replace(tenant, last_error=message, updated_at=now))
            break
        except StaleWrite:
            fresh = await services.tenants.get(tenant.tenant_id)
            if fresh is None:
                break
            tenant = fresh
    await publish(
        services,
        tenant.tenant_id,
        [
            Change(
                "tenant.consent_failed", tenant.tenant_id, {"reason": result.value, "message": message}, now
            )
        ],
    )
    return ConsentOutcome(result, message, tenant)


async def reauthorize(
    services: Services, tenant_id: str, credential: CustomerAppCredential | None
) -> Connection:
    """A new consent link (admin consent), or a new secret for the customer's app (rotation)."""
    tenant = await get_tenant(services, tenant_id)
    if tenant.state is TenantState.DISCONNECTING:
        raise Conflict(
            "tenant_id", "the tenant is still disconnecting; create it again once it is disconnected"
        )
    if tenant.state.gone:
        raise Conflict(
            "tenant_id", "the tenant is disconnected; create it again (POST /tenants) to reconnect"
        )
    with bound(tenant=tenant.tenant_id):
        if tenant.auth_mode is AuthMode.CUSTOMER_APP or credential is not None:
            if credential is None:
                raise InvalidInput("client_secret", "a customer_app tenant is reauthorized with a new secret")
            return await _connect_customer_app(services, tenant, credential, create=False)
        return Connection(tenant, await _new_consent_url(services, tenant))


SAVE_ATTEMPTS: Final = 5  # a change re-applied on a fresh read this often (workers move a tenant's state)


async def save_tenant_change(
    services: Services, tenant_id: str, change: Callable[[Tenant], Tenant | None]
) -> tuple[Tenant, bool]:
    """Apply `change` to a fresh read of the tenant and save it. When a worker saved the row in between (a
    migration finishing), read and apply it again rather than fail. `change` answers None when there is
    nothing to save, and may raise. Answers the tenant (as saved, or as read) and whether it was saved."""
    for _ in range(SAVE_ATTEMPTS):
        tenant = await get_tenant(services, tenant_id)
        changed = change(tenant)
        if changed is None:
            return tenant, False
        try:
            return await services.tenants.save(changed), True
        except StaleWrite:
            continue
    raise Conflict("tenant_id", "the tenant is being changed concurrently; retry")


async def update_settings(services: Services, tenant_id: str, patch: Mapping[str, Any]) -> Tenant:
    """Apply a settings patch (absent fields keep their values), to the fresh row if a worker saved it
    meanwhile."""

    def patched(tenant: Tenant) -> Tenant:
        if tenant.state.gone:
            raise Conflict("tenant_id", f"the tenant is {tenant.state.value}")
        settings = parse_settings(patch, tenant.settings, prefix="settings")
        return replace(tenant, settings=settings, updated_at=services.clock.now())

    tenant, _ = await save_tenant_change(services, tenant_id, patched)
    return tenant


async def begin_disconnect(services: Services, tenant_id: str) -> Tenant:
    """Mark the tenant disconnecting and queue the clean-up. Idempotent: calling again re-queues it."""

    def disconnecting(tenant: Tenant) -> Tenant | None:
        if tenant.state in (TenantState.DISCONNECTED, TenantState.DISCONNECTING):
            return None
        return tenant.with_state(TenantState.DISCONNECTING, services.clock.now())

    tenant, _ = await save_tenant_change(services, tenant_id, disconnecting)
    with bound(tenant=tenant.tenant_id):
        if tenant.state is TenantState.DISCONNECTED:
            return tenant
        await services.jobs.enqueue([jobs.disconnect(tenant.tenant_id)])
        log.info("disconnect queued")
        return tenant


async def finish_disconnect(services: Services, tenant_id: str) -> None:
    """Purge the tenant: every user row and consent state, its subscriptions and secret, then free its
    directory for a reconnect; safe to repeat after a crash. The feed stays, so that a reconnect numbers on
    after the cursor a host kept."""
    tenant = await services.tenants.get(tenant_id)
    if tenant is None or tenant.state is not TenantState.DISCONNECTING:
        return
    with bound(tenant=tenant_id):
        sharing = [
            t.tenant_id
            for t in await services.tenants.list()
            if t.directory_id == tenant.directory_id and t.tenant_id != tenant_id and not t.state.gone
        ]
        if sharing:
            # Two keys over one directory (stored before directories were claimed): Graph's subscriptions
            # in the directory and its customer secret serve the other tenant too; only our rows go.
            log.warning("directory shared with tenant %s: its subscriptions and secret are left", sharing[0])
            removed = 0
            for record in await services.subscription_index.for_tenant(tenant_id):
                await services.subscription_index.delete(record.subscription_id)
        else:
            removed = await remove_tenant_subscriptions(services, tenant)
        await _purge_rows(services, tenant_id)
        if not sharing:
            await services.secrets.delete(secret_name(tenant.directory_id))  # soft: Key Vault keeps it
        await publish(
            services, tenant_id, [Change("tenant.disconnected", tenant_id, {}, services.clock.now())]
        )
        # Freed before the row says disconnected, so a crash in between leaves a job that runs again (a
        # directory connected meanwhile under another key counts as sharing then), never a stuck claim.
        await services.tenants.release_directory(tenant)
        await services.tenants.save(
            replace(tenant.with_state(TenantState.DISCONNECTED, services.clock.now()), customer_app=None)
        )
        log.info("tenant disconnected and purged (%d subscriptions deleted)", removed)


async def _purge_rows(services: Services, tenant_id: str) -> None:
    """Every row the tenant's connection made under its key, but the feed (idempotent)."""
    await services.item_statuses.delete_tenant(tenant_id)
    await services.leases.delete_prefix(f"{tenant_id}/")
    await services.dead_letters.delete_tenant(tenant_id)
    await services.appointments.delete_tenant(tenant_id)  # what was written to calendars stays
    await services.users.delete_tenant(tenant_id)
    await services.consent_states.delete_tenant(tenant_id)


async def mark_consent_revoked(services: Services, tenant_id: str, reason: str) -> None:
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


async def tenant_progress(services: Services, tenant: Tenant) -> Progress:
    users = await services.users.list_all(tenant.tenant_id)
    return progress(
        tenant.state, users, tenant.connected_at, services.clock.now(), scope=tenant.settings.user_scope
    )
