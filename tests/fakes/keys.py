"""One worker's view of a shared vault (the fake's or the emulator's), for races and rotations between
workers: reads of versions are counted, the first read of the current version can wait until every
racing worker has made it (as two cold workers would), and writes can be slowed."""

from __future__ import annotations

import asyncio
from datetime import datetime

from shared.service.ports.secret_store import SecretStore
from shared.service.records import StoredSecret


class WorkerVault:
    def __init__(self, vault: SecretStore, *, write_delay: float = 0.0) -> None:
        self.vault = vault
        self.write_delay = write_delay
        self.reads = 0
        self.first_read: asyncio.Barrier | None = None

    async def get(self, name: str) -> str | None:
        return await self.vault.get(name)

    async def current(self, name: str) -> StoredSecret | None:
        found = await self.vault.current(name)
        if self.first_read is not None:
            barrier, self.first_read = self.first_read, None
            await barrier.wait()
        return found

    async def at_version(self, name: str, version: str) -> str | None:
        self.reads += 1
        return await self.vault.at_version(name, version)

    async def set(self, name: str, value: str, *, expires_on: datetime | None = None) -> str:
        await asyncio.sleep(self.write_delay)
        return await self.vault.set(name, value, expires_on=expires_on)

    async def delete(self, name: str) -> None:
        await self.vault.delete(name)


def race_first_reads(*vaults: WorkerVault) -> None:
    """Each worker's first read of a key's current version waits for the others' (all find none)."""
    barrier = asyncio.Barrier(len(vaults))
    for vault in vaults:
        vault.first_read = barrier
