"""Secrets by name (Key Vault): the connector's keys and the customers' app secrets.

Key Vault keeps every version of a secret (each `set` adds one); the connector's keys and a customer's
secret are named by version wherever a race or a rotation could leave two workers holding different
ones (`shared/service/keys.py`, the Graph credentials).
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from shared.service.records import StoredSecret


class SecretStore(Protocol):
    async def get(self, name: str) -> str | None:
        """The current version's value (None: no such secret)."""
        ...

    async def current(self, name: str) -> StoredSecret | None:
        """The current version, with its version id (None: no such secret)."""
        ...

    async def at_version(self, name: str, version: str) -> str | None:
        """One version's value; None when the vault holds no such version, or holds it disabled."""
        ...

    async def set(self, name: str, value: str, *, expires_on: datetime | None = None) -> str:
        """Add a version (it becomes the current one); answers its version id."""
        ...

    async def delete(self, name: str) -> None: ...
