"""Connecting a tenant with the customer's own app registration (client id and secret).

The credential is validated by signing in and reading the directory once; only then is anything stored,
and the secret only in Key Vault. Reauthorizing such a tenant is a secret rotation through the same path:
the new secret is a new Key Vault version, and the tenant row records it (`CustomerApp.secret_version`),
so every worker's next job for the tenant builds its Graph credential with the new secret
(`shared/adapters/graph/credentials.py`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

from shared.domain.tenants import AuthMode, CustomerApp, Tenant, secret_name
from shared.service.commands import CustomerAppCredential
from shared.service.context import UsesCustomerApps, UsesSecrets
from shared.service.errors import InvalidInput, TenantAccessError
from shared.service.tenants import Connection, ConnectPorts, mark_connected, store_new


class CustomerAppPorts(ConnectPorts, UsesSecrets, UsesCustomerApps, Protocol):
    """Connecting with the customer's app: its sign-in checked, its secret kept, the tenant connected."""


async def connect_customer_app(
    services: CustomerAppPorts, tenant: Tenant, credential: CustomerAppCredential, *, create: bool
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
        tenant = await store_new(services, tenant)
    version = await services.secrets.set(
        secret_name(tenant.directory_id), credential.client_secret, expires_on=credential.secret_expires_at
    )
    # The version on the row is every worker's credential cache key: a worker's next job for the tenant
    # reads it and builds its credential with this secret, whatever it cached before.
    assert tenant.customer_app is not None
    tenant = replace(tenant, customer_app=replace(tenant.customer_app, secret_version=version))
    tenant = await mark_connected(services, tenant, "customer_app")
    return Connection(tenant)
