"""The connector's own signing keys, kept in Key Vault and cached per worker.

- `notification-signing-key`: Graph subscriptions' clientState (created on first use).
- `console-link-key`: the admin console links (created on first use).
- `host-webhook-secret`: the host's webhook signatures; the operator sets it (the host must know it too).

A key created on first use is read back after it is written, so two workers that race on the very first
use settle on Key Vault's latest version; the rare loser's clientStates are healed by the renewal timer,
which recreates subscriptions that stay silent.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
from typing import Final

from shared.service.ports.secret_store import SecretStore

NOTIFICATION_KEY: Final = "notification-signing-key"
CONSOLE_KEY: Final = "console-link-key"
HOST_WEBHOOK_SECRET: Final = "host-webhook-secret"  # noqa: S105 (a Key Vault secret name)


class KeyRing:
    def __init__(self, secrets_store: SecretStore) -> None:
        self._store = secrets_store
        self._cache: dict[str, bytes] = {}
        self._lock = asyncio.Lock()

    async def key(self, name: str, *, create: bool = True) -> bytes | None:
        cached = self._cache.get(name)
        if cached is not None:
            return cached
        async with self._lock:
            if name in self._cache:
                return self._cache[name]
            value = await self._store.get(name)
            if value is None and create:
                await self._store.set(name, base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())
                value = await self._store.get(name)
            if value is None:
                return None
            self._cache[name] = value.encode()
            return self._cache[name]

    async def required(self, name: str) -> bytes:
        value = await self.key(name)
        assert value is not None  # created on first use
        return value
