"""The local stack's shared clock: real time plus the offset the Microsoft 365 emulator publishes.

Only the local host builds it (`LOCAL_CLOCK_FILE`, refused anywhere else by the settings). The emulator
writes its offset from real time to the file (seconds, as decimal text, replaced whole) whenever a test
moves its clock, so the connector's subscription expiries, renewal decisions, consent states, credential
warnings and leases follow the same jump as the emulator's tokens, subscriptions and secrets. Reading
costs a `stat` per call; the file is read again only when it changed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from azure.core.credentials import AccessToken
from azure.core.credentials_async import AsyncTokenCredential


class FileClock:
    def __init__(self, path: Path | str) -> None:
        self._path = Path(path)
        self._seen: tuple[int, int] | None = None  # (mtime_ns, size) of the content read last
        self._offset = timedelta(0)

    def offset(self) -> timedelta:
        """The emulator's offset from real time; zero until the emulator has written the file."""
        try:
            stat = os.stat(self._path)
        except FileNotFoundError:
            return timedelta(0)
        version = (stat.st_mtime_ns, stat.st_size)
        if version != self._seen:
            self._offset = timedelta(seconds=float(self._path.read_text(encoding="ascii")))
            self._seen = version
        return self._offset

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset()


class ClockedCredential:
    """The platform credential judged by the shared clock (local host only).

    azure-identity caches a token until its expiry by real time; the emulator's Key Vault refuses it once
    the shared clock passed its `exp` (a 401 challenge, "AKV10032: Token expired"). The Key Vault client
    answers that challenge by asking for a token again: this credential then notices that the token is
    stale by the shared clock (real time plus how far the clock moved since the token was first handed
    out) and gets a new one from a new inner credential (an empty cache). Graph's own 401s are renewed by
    the tenant credentials (`shared/adapters/identity.RenewableCredential`), as against Graph.
    """

    MARGIN: Final = 300.0  # seconds, as the SDKs refresh ahead of expiry

    def __init__(self, make: Callable[[], AsyncTokenCredential], clock: FileClock) -> None:
        self._make = make
        self._clock = clock
        self._inner: AsyncTokenCredential | None = None
        self._first_seen: dict[str, float] = {}  # token -> the clock's offset (s) when first handed out

    async def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        for _ in range(2):
            if self._inner is None:
                self._inner = self._make()
            token = await self._inner.get_token(
                *scopes, claims=claims, tenant_id=tenant_id, enable_cae=enable_cae, **kwargs
            )
            if not self._stale(token):
                return token
            stale, self._inner = self._inner, None
            await stale.close()
        return token

    def _stale(self, token: AccessToken) -> bool:
        offset = self._clock.offset().total_seconds()
        if len(self._first_seen) > 64:
            self._first_seen.clear()
        moved = offset - self._first_seen.setdefault(token.token, offset)
        return time.time() + moved >= token.expires_on - self.MARGIN

    async def close(self) -> None:
        if self._inner is not None:
            await self._inner.close()

    async def __aenter__(self) -> ClockedCredential:
        return self

    async def __aexit__(self, *args: object) -> None:
        await self.close()
