"""The connector's one typed settings object.

Read once, from app settings (environment variables; `local.settings.json` `Values` locally), by the
composition root. Nothing else reads the environment, but for `functions/queues.py`, which registers
the queue triggers of each storage shard at import (`storage_shard_names`). `REQUIRED` and `OPTIONAL`
are the whole list of names the code reads in Azure; `tests/infra` checks that `infra/` sets every
required one, and none of `LOCAL_ONLY` (settings of the local host, refused anywhere else).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

KEY_VAULT_REFERENCE_PREFIX: Final = "@Microsoft.KeyVault("

# Names the connector reads. Required: the app does not start without them.
REQUIRED: Final[tuple[str, ...]] = (
    "KEY_VAULT_URL",
    "GRAPH_CLIENT_ID",
    "PUBLIC_BASE_URL",
    "RENEWAL_SCHEDULE",
    "NIGHTLY_RESYNC_SCHEDULE",
)
# Optional, with the defaults below. Storage is required too, in one of two shapes (see `StorageSettings`).
OPTIONAL: Final[tuple[str, ...]] = (
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_AUTHORITY_HOST",
    "GRAPH_CLIENT_SECRET",
    "GRAPH_CLIENT_SECRET_NAME",
    "GRAPH_AUTHORITY_HOST",
    "GRAPH_BASE_URL",
    "GRAPH_SCOPE",
    "HOST_WEBHOOK_URL",
    "HOST_WEBHOOK_MAX_ATTEMPTS",
    "HOST_WEBHOOK_RETRY_SECONDS",
    "RECONCILIATION_DAYS",
    "TLS_CA_BUNDLE",
    "TABLE_PREFIX",
    "CONNECTOR_VERSION",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "TELEMETRY_EXPORTER",
    "TELEMETRY_SAMPLING_RATIO",
    "MESSAGE_MONITOR",
    "STORAGE_SHARDS",
    "STORAGE_PLACEMENT",
)
# Honoured by the local host only, never set in Azure (tests/infra checks that infra does not): the shared
# clock file the Microsoft 365 emulator writes (its offset from real time), so one clock moves the emulator
# and the connector together in end-to-end tests. Anywhere else the settings object refuses to start.
LOCAL_ONLY: Final[tuple[str, ...]] = ("LOCAL_CLOCK_FILE",)
# What marks the local host: the Functions environment it declares (Core Tools and devhost set
# `Development`; Azure defaults to `Production`), and no Azure instance (the platform sets the id there).
LOCAL_ENVIRONMENT: Final = ("AZURE_FUNCTIONS_ENVIRONMENT", "Development")
AZURE_INSTANCE: Final = "WEBSITE_INSTANCE_ID"
STORAGE_CONNECTION: Final = "AzureWebJobsStorage"
# A shard's connection is named like an app setting: letters, digits and single underscores (it also names
# the queue triggers registered for it), never the home connection's name.
_SHARD_NAME: Final = re.compile(r"[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)*")
# Secrets the app can also read from Key Vault itself: an unresolved reference (say, before the operator
# stored the secret) is treated as absent rather than stopping every function.
SELF_READ_SECRETS: Final = frozenset({"GRAPH_CLIENT_SECRET"})

DEFAULT_AUTHORITY_HOST: Final = "https://login.microsoftonline.com"
DEFAULT_GRAPH_BASE_URL: Final = "https://graph.microsoft.com/v1.0"
DEFAULT_GRAPH_SCOPE: Final = "https://graph.microsoft.com/.default"
DEFAULT_GRAPH_SECRET_NAME: Final = "graph-client-secret"  # noqa: S105 (a name, not a secret)
DEFAULT_HOST_WEBHOOK_MAX_ATTEMPTS: Final = 8  # as shared/service/delivery_policy.DeliveryPolicy
DEFAULT_HOST_WEBHOOK_RETRY_SECONDS: Final = 30
DEFAULT_RECONCILIATION_DAYS: Final = 7  # as shared/domain/sync_window.DEFAULT_RECONCILIATION_DAYS
MAX_RECONCILIATION_DAYS: Final = 28


class SettingsError(Exception):
    """A setting is missing or unusable; the message names it."""


@dataclass(frozen=True, slots=True)
class StorageSettings:
    """Where tables and queues live.

    Locally a connection string (`UseDevelopmentStorage=true` or Azurite's explicit one); in Azure an
    identity-based connection (`AzureWebJobsStorage__tableServiceUri` / `__queueServiceUri`, or
    `__accountName`), used with the managed identity.
    """

    connection_string: str | None
    table_endpoint: str | None
    queue_endpoint: str | None
    blob_endpoint: str | None = None  # the outgoing mail's content (`__blobServiceUri`, or the account's)

    @classmethod
    def from_environ(cls, env: Mapping[str, str], connection: str = STORAGE_CONNECTION) -> StorageSettings:
        """The account a connection setting names (`AzureWebJobsStorage`, or a shard's), as the Functions
        host reads it: the setting itself as a connection string, or its `__` members."""
        connection_string = env.get(connection, "").strip() or None
        if connection_string:
            return cls(connection_string, None, None)
        prefix = f"{connection}__"
        account = env.get(f"{prefix}accountName", "").strip()
        table = env.get(f"{prefix}tableServiceUri", "").strip() or (
            f"https://{account}.table.core.windows.net" if account else ""
        )
        queue = env.get(f"{prefix}queueServiceUri", "").strip() or (
            f"https://{account}.queue.core.windows.net" if account else ""
        )
        if not table or not queue:
            raise SettingsError(
                f"{connection}: set a connection string, or {prefix}accountName "
                f"(or {prefix}tableServiceUri and {prefix}queueServiceUri) for an identity-based connection"
            )
        blob = env.get(f"{prefix}blobServiceUri", "").strip() or (
            f"https://{account}.blob.core.windows.net" if account else ""
        )
        return cls(None, table.rstrip("/"), queue.rstrip("/"), blob.rstrip("/") or None)


def storage_shard_names(env: Mapping[str, str]) -> tuple[str, ...]:
    """`STORAGE_SHARDS`: the connection names of the storage accounts besides the home one
    (`AzureWebJobsStorage`), comma-separated, in the order they were added. The queue triggers are
    registered once per name, so function_app reads this at import."""
    raw = env.get("STORAGE_SHARDS", "")
    names = tuple(name.strip() for name in raw.split(",") if name.strip())
    for name in names:
        if not _SHARD_NAME.fullmatch(name) or name.lower() == STORAGE_CONNECTION.lower():
            raise SettingsError(
                f"STORAGE_SHARDS: {name!r} is not a connection name (letters and digits, single underscores, "
                f"not {STORAGE_CONNECTION})"
            )
    if len({name.lower() for name in names}) != len(names):
        raise SettingsError("STORAGE_SHARDS: a connection is named twice")
    return names


@dataclass(frozen=True, slots=True)
class StorageShards:
    """The storage accounts beyond the home one, and where new tenants go (see DESIGN.md, Sharding across
    storage accounts).

    `accounts`: each shard's connection name and its account. `placement`: the connections a new tenant
    is placed on (`STORAGE_PLACEMENT`, comma-separated; `AzureWebJobsStorage` may be among them); by
    default every shard, or the home account when there is none."""

    accounts: tuple[tuple[str, StorageSettings], ...] = ()
    placement: tuple[str, ...] = (STORAGE_CONNECTION,)

    @classmethod
    def from_environ(cls, env: Mapping[str, str]) -> StorageShards:
        names = storage_shard_names(env)
        accounts = tuple((name, StorageSettings.from_environ(env, name)) for name in names)
        raw = env.get("STORAGE_PLACEMENT", "")
        placement = tuple(name.strip() for name in raw.split(",") if name.strip())
        known = {STORAGE_CONNECTION, *names}
        unknown = [name for name in placement if name not in known]
        if unknown:
            raise SettingsError(
                f"STORAGE_PLACEMENT: {', '.join(unknown)}: neither {STORAGE_CONNECTION} nor in STORAGE_SHARDS"
            )
        if len(set(placement)) != len(placement):
            raise SettingsError("STORAGE_PLACEMENT: a connection is named twice")
        return cls(accounts, placement or names or (STORAGE_CONNECTION,))


@dataclass(frozen=True, slots=True)
class PlatformIdentity:
    """The identity the app itself uses for Key Vault and storage.

    In Azure: the user-assigned managed identity (`AZURE_CLIENT_ID`). Locally: a client-secret identity
    issued by the Microsoft 365 emulator (`AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`,
    `AZURE_AUTHORITY_HOST`), the same variables azure-identity's EnvironmentCredential reads.
    """

    client_id: str | None
    tenant_id: str | None
    client_secret: str | None = None
    authority_host: str | None = None

    @property
    def uses_secret(self) -> bool:
        return bool(self.client_secret)

    def __repr__(self) -> str:  # never print the secret
        return f"PlatformIdentity(client_id={self.client_id!r}, uses_secret={self.uses_secret})"


def _on_local_host(env: Mapping[str, str]) -> bool:
    name, local = LOCAL_ENVIRONMENT
    return env.get(name, "").strip().lower() == local.lower() and not env.get(AZURE_INSTANCE, "").strip()


def _resolved(value: str | None) -> str | None:
    return None if value is None or value.startswith(KEY_VAULT_REFERENCE_PREFIX) else value


@dataclass(frozen=True, slots=True)
class Settings:
    key_vault_url: str
    graph_client_id: str
    graph_client_secret_name: str
    graph_client_secret: str | None
    graph_authority_host: str
    graph_base_url: str
    graph_scope: str
    public_base_url: str
    host_webhook_url: str | None
    renewal_schedule: str
    nightly_resync_schedule: str
    storage: StorageSettings
    identity: PlatformIdentity
    tls_ca_bundle: str | None
    table_prefix: str
    version: str
    host_webhook_max_attempts: int = DEFAULT_HOST_WEBHOOK_MAX_ATTEMPTS  # posts per range, the first included
    host_webhook_retry_seconds: int = DEFAULT_HOST_WEBHOOK_RETRY_SECONDS  # the first backoff; doubled, capped
    local_clock_file: str | None = None  # the local stack's shared clock (LOCAL_ONLY); None: the system clock
    # Each user's calendar and To Do list are read whole once in this many nights (1: every night).
    reconciliation_days: int = DEFAULT_RECONCILIATION_DAYS
    # Telemetry (shared/telemetry): Application Insights when its connection string is set; otherwise the
    # local exporter when `TELEMETRY_EXPORTER` names one (`console`, or an OTLP/HTTP endpoint); else none.
    applicationinsights_connection_string: str | None = None
    telemetry_exporter: str | None = None
    # With a local exporter: the share of traces exported whole (by trace id, the same in every worker);
    # a failed span of the others is exported alone. In Azure the distro's sampler decides.
    telemetry_sampling_ratio: float = 1.0
    message_monitor: bool = True  # MESSAGE_MONITOR=off records no message (to measure what the monitor costs)
    shards: StorageShards = StorageShards()  # STORAGE_SHARDS, STORAGE_PLACEMENT: none by default

    def __repr__(self) -> str:  # the secret setting never reaches a log
        return f"Settings(graph_client_id={self.graph_client_id!r}, public_base_url={self.public_base_url!r})"

    @classmethod
    def from_environ(cls, env: Mapping[str, str]) -> Settings:
        missing = [name for name in REQUIRED if not env.get(name, "").strip()]
        if missing:
            raise SettingsError(f"missing app settings: {', '.join(missing)}")
        unresolved = sorted(
            name
            for name, value in env.items()
            if value.strip().startswith(KEY_VAULT_REFERENCE_PREFIX) and name not in SELF_READ_SECRETS
        )
        if unresolved:
            raise SettingsError(
                "Key Vault references were not resolved (check the app's keyVaultReferenceIdentity and its "
                f"Key Vault secrets role): {', '.join(unresolved)}"
            )
        table_prefix = env.get("TABLE_PREFIX", "").strip()
        if table_prefix and not table_prefix.isalnum():
            raise SettingsError("TABLE_PREFIX: letters and digits only (it prefixes Azure table names)")

        def optional(name: str) -> str | None:
            return env.get(name, "").strip() or None

        def optional_int(name: str, default: int, minimum: int, maximum: int) -> int:
            raw = optional(name)
            if raw is None:
                return default
            try:
                value = int(raw)
            except ValueError:
                raise SettingsError(f"{name}: a whole number, {minimum} to {maximum}") from None
            if not minimum <= value <= maximum:
                raise SettingsError(f"{name}: a whole number, {minimum} to {maximum}")
            return value

        local_clock_file = optional("LOCAL_CLOCK_FILE")
        if local_clock_file is not None and not _on_local_host(env):
            raise SettingsError(
                "LOCAL_CLOCK_FILE: a test setting of the local host only (it moves the connector's clock); "
                "remove it from the app settings"
            )

        telemetry_exporter = optional("TELEMETRY_EXPORTER")
        if telemetry_exporter is not None and not (
            telemetry_exporter == "console" or telemetry_exporter.startswith(("http://", "https://"))
        ):
            raise SettingsError(
                "TELEMETRY_EXPORTER: `console`, or the http(s) URL of an OTLP/HTTP endpoint "
                "(such as http://127.0.0.1:4318)"
            )
        ratio_text = optional("TELEMETRY_SAMPLING_RATIO") or "1"
        try:
            sampling_ratio = float(ratio_text)
        except ValueError:
            sampling_ratio = -1.0
        if not 0 < sampling_ratio <= 1:
            raise SettingsError(
                "TELEMETRY_SAMPLING_RATIO: a share of traces above 0 and at most 1 (0.1: one in ten)"
            )
        monitor = (optional("MESSAGE_MONITOR") or "on").lower()
        if monitor not in ("on", "off"):
            raise SettingsError("MESSAGE_MONITOR: on or off")

        return cls(
            key_vault_url=env["KEY_VAULT_URL"].strip().rstrip("/"),
            graph_client_id=env["GRAPH_CLIENT_ID"].strip(),
            graph_client_secret_name=optional("GRAPH_CLIENT_SECRET_NAME") or DEFAULT_GRAPH_SECRET_NAME,
            graph_client_secret=_resolved(optional("GRAPH_CLIENT_SECRET")),
            graph_authority_host=(optional("GRAPH_AUTHORITY_HOST") or DEFAULT_AUTHORITY_HOST).rstrip("/"),
            graph_base_url=(optional("GRAPH_BASE_URL") or DEFAULT_GRAPH_BASE_URL).rstrip("/"),
            graph_scope=optional("GRAPH_SCOPE") or DEFAULT_GRAPH_SCOPE,
            public_base_url=env["PUBLIC_BASE_URL"].strip().rstrip("/"),
            host_webhook_url=optional("HOST_WEBHOOK_URL"),
            renewal_schedule=env["RENEWAL_SCHEDULE"].strip(),
            nightly_resync_schedule=env["NIGHTLY_RESYNC_SCHEDULE"].strip(),
            storage=StorageSettings.from_environ(env),
            identity=PlatformIdentity(
                client_id=optional("AZURE_CLIENT_ID"),
                tenant_id=optional("AZURE_TENANT_ID"),
                client_secret=optional("AZURE_CLIENT_SECRET"),
                authority_host=optional("AZURE_AUTHORITY_HOST"),
            ),
            tls_ca_bundle=optional("TLS_CA_BUNDLE"),
            table_prefix=table_prefix,
            version=optional("CONNECTOR_VERSION") or "0.1.0",
            host_webhook_max_attempts=optional_int(
                "HOST_WEBHOOK_MAX_ATTEMPTS", DEFAULT_HOST_WEBHOOK_MAX_ATTEMPTS, 1, 50
            ),
            host_webhook_retry_seconds=optional_int(
                "HOST_WEBHOOK_RETRY_SECONDS", DEFAULT_HOST_WEBHOOK_RETRY_SECONDS, 0, 3600
            ),
            local_clock_file=local_clock_file,
            reconciliation_days=optional_int(
                "RECONCILIATION_DAYS", DEFAULT_RECONCILIATION_DAYS, 1, MAX_RECONCILIATION_DAYS
            ),
            applicationinsights_connection_string=optional("APPLICATIONINSIGHTS_CONNECTION_STRING"),
            telemetry_exporter=telemetry_exporter,
            telemetry_sampling_ratio=sampling_ratio,
            message_monitor=monitor == "on",
            shards=StorageShards.from_environ(env),
        )
