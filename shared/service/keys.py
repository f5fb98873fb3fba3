"""The connector's own signing keys, kept in Key Vault by version and cached per worker.

- `notification-signing-key`: Graph subscriptions' clientState (created at deployment, else on first use).
- `console-link-key`: the admin console links (created at deployment, else on first use).
- `host-webhook-secret`: the host's webhook signatures; the operator sets it (the host must know it too).

What the connector signs names the Key Vault version of the key it signed with (a clientState's
`v2.{version}.`, a console token's `kid`), and a check uses that version. Key Vault has no
create-if-absent, so two workers that make a key at the same moment each write a version and may each
sign with their own; and an operator rotates a key by adding a version. Either way the other workers
verify what was signed with the version it names, fetched from Key Vault and cached, for as long as
Key Vault holds it enabled: nothing signed before a race or a rotation is stranded, and disabling a
version in Key Vault revokes its signatures (each worker reads a version it verifies with again every
`CURRENT_FOR`, keeping what it had while Key Vault cannot answer). Signing uses the current version,
read again every `CURRENT_FOR` too, so a rotation reaches every worker within that time. A version
that Key Vault does not hold is remembered as such for `UNKNOWN_FOR`, and a worker asks Key Vault about
at most `LOOKUPS_PER_MINUTE` unknown versions a minute, so forged notifications naming random versions
cost the vault almost nothing.

A subscription keeps the clientState it was created with through its PATCH renewals (Graph cannot change
a clientState), and its index row records the version that clientState names. After a rotation (or a race
on the first key) the subscriptions are moved to the current version: the renewal timer's tenant run
recreates every subscription whose recorded version is not the current one (calendar and To Do list; the
new one made before the old one is deleted, so no notification falls between), and a renewal of one
whose version is not current (or not recorded: made before versions were) recreates it instead of
renewing it. Before re-signing, the current version is read from Key Vault afresh, so a worker whose
cached version is older never moves subscriptions back. So two rotations at least one renewal-timer
period (plus `CURRENT_FOR`) apart never strand a subscription, and an operator may disable a version
once the timer has run after the rotation that replaced it. One that Graph lost is recreated by the
renewal timer (which lists the tenant's subscriptions in Graph) or a resync; one that Graph holds but
whose notifications do not pass (its key version disabled too early, say) goes silent, and the renewal
timer's catch-up of a subscription silent for a day recreates it, signed with the current version, as
soon as that catch-up finds changes no notification announced.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from shared.domain.signing import KEY_VERSION_RE
from shared.observability import get_logger
from shared.service.errors import DependencyUnavailable
from shared.service.ports.secret_store import SecretStore

log = get_logger("keys")

NOTIFICATION_KEY: Final = "notification-signing-key"
CONSOLE_KEY: Final = "console-link-key"
HOST_WEBHOOK_SECRET: Final = "host-webhook-secret"  # noqa: S105 (a Key Vault secret name)
SIGNING_KEYS: Final = (NOTIFICATION_KEY, CONSOLE_KEY)  # versioned, created at deployment or first use

CURRENT_FOR: Final = 600.0  # seconds a worker signs with the version it read before reading again
FRESH_FOR: Final = 10.0  # seconds a version read is current enough to re-sign a subscription with
UNKNOWN_FOR: Final = 300.0  # seconds a version Key Vault did not hold is answered as unknown
LOOKUPS_PER_MINUTE: Final = 20  # Key Vault reads of versions not cached, per worker and minute
KNOWN_KEPT: Final = 256  # versions (and unknowns) a worker remembers per key


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A key's value and the Key Vault version it is (what a signature names). No value in its repr."""

    secret: bytes
    version: str

    def __repr__(self) -> str:
        return f"SigningKey(version={self.version!r})"


def new_key_value() -> str:
    """A new key: 32 random bytes, base64url (what the deployment's hook writes too)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


class KeyRing:
    def __init__(
        self, secrets_store: SecretStore, *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._store = secrets_store
        self._now = monotonic
        self._cache: dict[str, bytes] = {}  # unversioned secrets (the host webhook's)
        self._current: dict[str, tuple[SigningKey, float]] = {}  # name -> (key, read at)
        self._versions: dict[str, OrderedDict[str, tuple[bytes, float]]] = {}  # version -> (value, read at)
        self._unknown: dict[str, OrderedDict[str, float]] = {}  # name -> version -> when found missing
        self._lookups: list[float] = []  # when the last unknown versions were looked up
        self._lock = asyncio.Lock()

    # --- signing ------------------------------------------------------------------------------------

    async def signing(self, name: str, *, fresh: bool = False) -> SigningKey:
        """The key's current version (created on first use), read again every `CURRENT_FOR`; when `fresh`
        (before re-signing what may have been signed with a version this worker has not read yet), read
        again if read more than `FRESH_FOR` ago, so re-signing many subscriptions costs the vault little."""
        kept_for = FRESH_FOR if fresh else CURRENT_FOR
        cached = self._current.get(name)
        if cached is not None and self._now() - cached[1] < kept_for:
            return cached[0]
        async with self._lock:
            cached = self._current.get(name)
            if cached is not None and self._now() - cached[1] < kept_for:
                return cached[0]
            try:
                stored = await self._store.current(name)
            except DependencyUnavailable:
                if cached is None:
                    raise
                log.warning(
                    "%s: Key Vault did not answer; signing with version %s a while longer",
                    name,
                    cached[0].version,
                )
                self._current[name] = (cached[0], self._now())
                return cached[0]
            if stored is None:
                # Another worker may be writing one too: both versions stay valid, each names itself.
                version = await self._store.set(name, new_key_value())
                stored = await self._store.current(name)
                log.info("created %s (version %s)", name, version)
            assert stored is not None  # just written
            key = SigningKey(stored.value.encode(), stored.version)
            if cached is not None and cached[0].version != key.version:
                log.info("%s rotated: signing with version %s", name, key.version)
            self._current[name] = (key, self._now())
            self._remember(name, key.version, key.secret)
            return key

    # --- verifying ----------------------------------------------------------------------------------

    async def verifying(self, name: str, version: str) -> bytes | None:
        """The key's `version`, as Key Vault holds it (enabled); None for a version it does not hold."""
        if not KEY_VERSION_RE.match(version):
            return None
        current = await self.signing(name)  # the common case: the current version
        if current.version == version:
            return current.secret
        known = self._versions.get(name, OrderedDict()).get(version)
        if known is not None and self._now() - known[1] < CURRENT_FOR:
            return known[0]
        if known is not None:  # read again: an operator may have disabled it
            try:
                value = await self._store.at_version(name, version)
            except DependencyUnavailable:
                return known[0]  # Key Vault cannot say: keep what it said before
            return self._found(name, version, value)
        missing_since = self._unknown.get(name, OrderedDict()).get(version)
        if missing_since is not None and self._now() - missing_since < UNKNOWN_FOR:
            return None
        if not self._may_look_up():
            log.warning("%s: too many unknown key versions named; %s refused unread", name, version)
            return None
        return self._found(name, version, await self._store.at_version(name, version))

    def _found(self, name: str, version: str, value: str | None) -> bytes | None:
        if value is None:
            self._versions.get(name, OrderedDict()).pop(version, None)
            unknown = self._unknown.setdefault(name, OrderedDict())
            unknown[version] = self._now()
            while len(unknown) > KNOWN_KEPT:
                unknown.popitem(last=False)
            log.info("%s: version %s is not held (or is disabled) in Key Vault", name, version)
            return None
        self._remember(name, version, value.encode())
        return value.encode()

    async def known_versions(self, name: str) -> list[bytes]:
        """The current version and the others this worker verified with: for signatures that name none
        (clientStates made before versions), newest first."""
        current = await self.signing(name)
        known = reversed(self._versions.get(name, OrderedDict()).items())
        others = [value for version, (value, _) in known if version != current.version]
        return [current.secret, *others]

    def _remember(self, name: str, version: str, value: bytes) -> None:
        versions = self._versions.setdefault(name, OrderedDict())
        versions[version] = (value, self._now())
        versions.move_to_end(version)
        while len(versions) > KNOWN_KEPT:
            versions.popitem(last=False)
        self._unknown.get(name, OrderedDict()).pop(version, None)

    def _may_look_up(self) -> bool:
        now = self._now()
        self._lookups = [t for t in self._lookups if now - t < 60]
        if len(self._lookups) >= LOOKUPS_PER_MINUTE:
            return False
        self._lookups.append(now)
        return True

    # --- unversioned secrets ------------------------------------------------------------------------

    async def key(self, name: str, *, create: bool = True) -> bytes | None:
        """An unversioned secret (the host webhook's, which the operator sets): cached for the worker's
        life; created on first use only when `create`."""
        cached = self._cache.get(name)
        if cached is not None:
            return cached
        async with self._lock:
            if name in self._cache:
                return self._cache[name]
            value = await self._store.get(name)
            if value is None and create:
                await self._store.set(name, new_key_value())
                value = await self._store.get(name)
            if value is None:
                return None
            self._cache[name] = value.encode()
            return self._cache[name]
