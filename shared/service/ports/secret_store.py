"""Secrets by name (Key Vault): the connector's keys and the customers' app secrets."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class SecretStore(Protocol):
    async def get(self, name: str) -> str | None: ...
    async def set(self, name: str, value: str, *, expires_on: datetime | None = None) -> None: ...
    async def delete(self, name: str) -> None: ...
