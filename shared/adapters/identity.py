"""Credentials: the platform identity (Key Vault, storage) and per-tenant Graph credentials.

Built once per worker by the composition root and cached: a credential built per call throws its
token cache away.
"""

from __future__ import annotations

from azure.core.credentials_async import AsyncTokenCredential
from azure.identity.aio import ClientSecretCredential, ManagedIdentityCredential

from shared.settings import DEFAULT_AUTHORITY_HOST, Settings


def platform_credential(settings: Settings) -> AsyncTokenCredential:
    """The app's own identity: the user-assigned managed identity in Azure, a client secret locally."""
    identity = settings.identity
    if identity.uses_secret:
        if not (identity.tenant_id and identity.client_id and identity.client_secret):
            raise ValueError("AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET must be set together")
        return client_secret_credential(
            settings,
            tenant_id=identity.tenant_id,
            client_id=identity.client_id,
            client_secret=identity.client_secret,
            authority=identity.authority_host or settings.graph_authority_host,
        )
    return ManagedIdentityCredential(client_id=identity.client_id)


def client_secret_credential(
    settings: Settings,
    *,
    tenant_id: str,
    client_id: str,
    client_secret: str,
    authority: str | None = None,
) -> AsyncTokenCredential:
    authority = authority or settings.graph_authority_host
    custom_authority = authority.rstrip("/") != DEFAULT_AUTHORITY_HOST
    kwargs: dict[str, object] = {"authority": authority}
    if custom_authority:
        # Instance discovery asks login.microsoftonline.com to vouch for the host: not for a local emulator.
        kwargs["disable_instance_discovery"] = True
    if settings.tls_ca_bundle:
        kwargs["connection_verify"] = settings.tls_ca_bundle
    return ClientSecretCredential(tenant_id, client_id, client_secret, **kwargs)
