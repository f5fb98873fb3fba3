"""The composition root: the one place that builds clients and services, once per worker, lazily.

Nothing here runs at import, and the Azure SDKs are imported inside the factories, so the worker's
cold start does not pay for clients an invocation never uses. The first invocation calls
`container()`, which reads the settings and builds the container; later invocations resolve the
same objects (the same token caches and connection pools). Tests install their own container with
`use_container`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from shared.observability import configure_logging
from shared.settings import Settings

if TYPE_CHECKING:  # the SDKs are imported on first use, not at import: the worker's cold start pays less
    from azure.core.credentials_async import AsyncTokenCredential

    from shared.adapters.keyvault import KeyVaultSecretStore
    from shared.adapters.storage import StorageClients


@dataclass
class Container:
    settings: Settings
    _closing: list[object] = field(default_factory=list)

    @cached_property
    def credential(self) -> AsyncTokenCredential:
        from shared.adapters.identity import platform_credential

        return platform_credential(self.settings)

    @cached_property
    def storage(self) -> StorageClients:
        from shared.adapters.storage import StorageClients

        return StorageClients(self.settings.storage, self.credential, table_prefix=self.settings.table_prefix)

    @cached_property
    def secrets(self) -> KeyVaultSecretStore:
        from shared.adapters.keyvault import KeyVaultSecretStore

        return KeyVaultSecretStore(
            self.settings.key_vault_url, self.credential, ca_bundle=self.settings.tls_ca_bundle
        )


_container: Container | None = None


def container() -> Container:
    """The worker's container, built on first use from the app settings."""
    global _container  # noqa: PLW0603 (the worker-wide singleton is the point)
    if _container is None:
        configure_logging()
        _container = Container(Settings.from_environ(os.environ))
    return _container


def use_container(replacement: Container | None) -> None:
    """Install (or clear) the container; for tests and tools."""
    global _container  # noqa: PLW0603
    _container = replacement
