"""Credentials: the platform identity (Key Vault, storage) and per-tenant Graph credentials.

Built once per worker by the composition root and cached: a credential built per call throws its
token cache away. A tenant's Graph credential is renewable: a token Graph refused is never sent again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from azure.core.credentials import AccessToken
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


HANDED_OUT_KEPT = 16  # a refused token is one of the last few (azure-identity renews hourly)


class RenewableCredential:
    """A tenant's Graph credential that can be told Graph refused one of its tokens.

    azure-identity serves its cached token until its own clock says it expired, and skips the cache only
    for a claims challenge (kiota passes those on by itself). Graph may refuse a token earlier: expired by
    Graph's clock, signed with a key since rolled over, revoked. `refused(token)` then replaces the inner
    credential with a new one (an empty cache, so the next `get_token` asks Entra), once per refused token
    however many requests met the refusal at the same moment, and they share its first token. The
    replaced credential is closed as soon as no `get_token` runs on it.
    """

    def __init__(
        self, first: AsyncTokenCredential, make: Callable[[], Awaitable[AsyncTokenCredential]]
    ) -> None:
        self._current = first
        self._make = make
        self._handed_out: dict[str, None] = {}  # the last tokens the current inner credential gave
        self._running: dict[AsyncTokenCredential, int] = {}
        self._retired: list[AsyncTokenCredential] = []
        self._renewal = asyncio.Lock()
        self._warming = False  # the current inner credential was just made and holds no token yet

    async def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        if self._warming:
            # A new inner credential has an empty cache: the first caller fetches the token, the others
            # wait and find it cached (azure-identity does not share one request between callers).
            async with self._renewal:
                token = await self._get(scopes, claims, tenant_id, enable_cae, kwargs)
                self._warming = False
                return token
        return await self._get(scopes, claims, tenant_id, enable_cae, kwargs)

    async def _get(
        self,
        scopes: tuple[str, ...],
        claims: str | None,
        tenant_id: str | None,
        enable_cae: bool,
        kwargs: dict[str, Any],
    ) -> AccessToken:
        credential = self._current
        self._running[credential] = self._running.get(credential, 0) + 1
        try:
            token = await credential.get_token(
                *scopes, claims=claims, tenant_id=tenant_id, enable_cae=enable_cae, **kwargs
            )
        finally:
            self._running[credential] -= 1
            if not self._running[credential]:
                del self._running[credential]
            await self._close_retired()
        if credential is self._current:
            self._handed_out[token.token] = None
            while len(self._handed_out) > HANDED_OUT_KEPT:
                del self._handed_out[next(iter(self._handed_out))]
        return token

    async def refused(self, token: str) -> None:
        """Graph refused `token`: the next `get_token` brings a new one (unless that happened already)."""
        async with self._renewal:
            if token not in self._handed_out:
                return  # another request met the same refusal and renewed already (or a stale token)
            fresh = await self._make()
            self._retired.append(self._current)
            self._current = fresh
            self._handed_out = {}
            self._warming = True
        await self._close_retired()

    async def _close_retired(self) -> None:
        idle = [c for c in self._retired if c not in self._running]
        self._retired = [c for c in self._retired if c in self._running]
        for credential in idle:
            await credential.close()

    async def close(self) -> None:
        retired, self._retired = self._retired, []
        for credential in [*retired, self._current]:
            await credential.close()

    async def __aenter__(self) -> RenewableCredential:
        return self

    async def __aexit__(self, *args: object) -> None:
        await self.close()
