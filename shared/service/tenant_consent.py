"""Connecting a tenant: `POST /tenants` (admin consent by default), the consent callback, reauthorizing.

A consent link carries a random, one-time, one-hour `state` bound to the tenant (stored as its hash).
The callback takes the state once; anything but a confirmed consent for the tenant's own directory
changes nothing but the tenant's recorded reason. A tenant with its own app (`customer_app.py`) is
connected without consent; `create_tenant` and `reauthorize` choose between the two.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, replace
from datetime import timedelta
from enum import StrEnum
from typing import Final, Protocol

from shared.domain.tenants import AuthMode, Tenant, TenantState
from shared.observability import bound, get_logger
from shared.service import jobs
from shared.service.commands import CreateTenant, CustomerAppCredential
from shared.service.context import (
    UsesClock,
    UsesConfig,
    UsesConsentStates,
    UsesCustomerApps,
    UsesDeliveryRequests,
    UsesDirectory,
    UsesFeed,
    UsesJobs,
    UsesSecrets,
    UsesTenants,
)
from shared.service.customer_app import connect_customer_app
from shared.service.errors import Conflict, InvalidInput, TenantAccessError
from shared.service.publishing import publish
from shared.service.records import Change, ConsentState
from shared.service.retries import StillContended, starting_from, update_optimistically
from shared.service.tenant_disconnect import PurgePorts, purge_rows
from shared.service.tenants import (
    Connection,
    ConnectPorts,
    TenantEventPorts,
    directory_taken,
    get_tenant,
    mark_connected,
    store_new,
)

log = get_logger("tenants")
CONSENT_STATE_TTL: Final = timedelta(hours=1)


class ConsentLinkPorts(UsesConsentStates, UsesClock, UsesConfig, Protocol):
    """A new consent link: its one-time state stored, the URL built from the connector's configuration."""


class ReauthorizePorts(
    UsesTenants,
    UsesConsentStates,
    UsesSecrets,
    UsesFeed,
    UsesJobs,
    UsesCustomerApps,
    UsesClock,
    UsesConfig,
    UsesDeliveryRequests,
    Protocol,
):
    """Reauthorizing: a new secret for the customer's app, or a new consent link."""


class CreateTenantPorts(ReauthorizePorts, PurgePorts, UsesDirectory, Protocol):
    """`POST /tenants`: the directory resolved, a reconnect's old rows purged, then connected or a link."""


class ConsentCallbackPorts(ConnectPorts, UsesConsentStates, UsesDirectory, Protocol):
    """The consent callback: the state taken once, the directory read, the tenant connected."""


def _state_hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


async def create_tenant(services: CreateTenantPorts, command: CreateTenant) -> Connection:
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
            raise directory_taken(other.tenant_id, other.state)
    if existing is not None:  # a job that was running at the purge may have written rows since
        await purge_rows(services, command.tenant_id)
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
            return await connect_customer_app(services, tenant, command.customer_app, create=True)
        tenant = await store_new(services, tenant)
        log.info("tenant %s; waiting for admin consent", "reconnecting" if existing else "created")
        return Connection(tenant, await _new_consent_url(services, tenant))


async def _new_consent_url(services: ConsentLinkPorts, tenant: Tenant) -> str:
    state = secrets.token_urlsafe(32)
    expires = services.clock.now() + CONSENT_STATE_TTL
    await services.consent_states.add(ConsentState(_state_hash(state), tenant.tenant_id, expires))
    return services.config.consent_url(tenant.directory_id, state)


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


async def complete_consent(services: ConsentCallbackPorts, callback: ConsentCallback) -> ConsentOutcome:
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
        if tenant.state.connected:  # reauthorized: the staff's matches and Teams statuses are looked up again
            await services.jobs.enqueue([jobs.rematch(tenant.tenant_id)])
            return ConsentOutcome(ConsentResult.CONNECTED, "This organisation is already connected.", tenant)
        tenant = await mark_connected(services, tenant, "admin_consent")
        return ConsentOutcome(ConsentResult.CONNECTED, "Your organisation is connected.", tenant)


_INVALID_LINK: Final = (
    "This consent link is not valid or has already been used. Ask the application for a new consent link."
)


def _first_line(text: str | None) -> str:
    return (text or "").replace("\r", "").split("\n", 1)[0].strip()[:500]


async def _consent_failed(
    services: TenantEventPorts, tenant: Tenant, result: ConsentResult, message: str
) -> ConsentOutcome:
    log.info("consent did not complete: %s", result)
    now = services.clock.now()
    try:
        done = await update_optimistically(
            starting_from(tenant, lambda: services.tenants.get(tenant.tenant_id)),
            lambda current: None if current is None else replace(current, last_error=message, updated_at=now),
            services.tenants.save,
            attempts=3,
        )
        tenant = done.latest or tenant  # as saved (None: deleted meanwhile)
    except StillContended:
        pass  # the feed still says it
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
    services: ReauthorizePorts, tenant_id: str, credential: CustomerAppCredential | None
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
            return await connect_customer_app(services, tenant, credential, create=False)
        return Connection(tenant, await _new_consent_url(services, tenant))
