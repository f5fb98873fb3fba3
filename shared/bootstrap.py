"""The composition root: the one place that builds clients and services, once per worker, lazily.

Nothing here runs at import, and the Azure SDKs are imported inside the factories, so the worker's
cold start does not pay for clients an invocation never uses. The first invocation calls
`container()`, which reads the settings and builds the container; later invocations resolve the
same objects (the same token caches and connection pools). Tests install their own container with
`use_container`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING

from shared import telemetry
from shared.observability import configure_logging
from shared.service.context import ConnectorConfig, Services
from shared.service.delivery_requests import DeliveryRequests
from shared.service.ports.clock import Clock
from shared.settings import Settings

if TYPE_CHECKING:  # the SDKs are imported on first use, not at import: the worker's cold start pays less
    from azure.core.credentials_async import AsyncTokenCredential

    from shared.adapters.graph.client import GraphClients
    from shared.adapters.graph.credentials import TenantCredentials
    from shared.adapters.host_webhook import HttpHostWebhook
    from shared.adapters.keyvault import KeyVaultSecretStore
    from shared.adapters.queues import StorageJobQueue
    from shared.adapters.storage import StorageClients, StorageRouter


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def clock_for(settings: Settings) -> Clock:
    """The system clock; on the local host with `LOCAL_CLOCK_FILE`, the clock it shares with the emulator."""
    if settings.local_clock_file is None:
        return SystemClock()
    from shared.adapters.local_clock import FileClock

    return FileClock(settings.local_clock_file)


@dataclass
class Container:
    settings: Settings

    @cached_property
    def clock(self) -> Clock:
        return clock_for(self.settings)

    @cached_property
    def credential(self) -> AsyncTokenCredential:
        from shared.adapters.identity import platform_credential

        if self.settings.local_clock_file is None:
            return platform_credential(self.settings)
        from shared.adapters.local_clock import ClockedCredential, FileClock

        return ClockedCredential(
            lambda: platform_credential(self.settings), FileClock(self.settings.local_clock_file)
        )

    @cached_property
    def storage(self) -> StorageClients:
        from shared.adapters.storage import StorageClients

        return StorageClients(self.settings.storage, self.credential, table_prefix=self.settings.table_prefix)

    @cached_property
    def router(self) -> StorageRouter:
        """Tenant -> storage account: the home account (`storage`) and the shards of `STORAGE_SHARDS`."""
        from shared.adapters.storage import StorageClients, StorageRouter
        from shared.adapters.tables.tenants import TenantAccounts

        shards = {
            name: StorageClients(account, self.credential, table_prefix=self.settings.table_prefix)
            for name, account in self.settings.shards.accounts
        }
        return StorageRouter(
            self.storage, shards, self.settings.shards.placement, TenantAccounts(self.storage)
        )

    @cached_property
    def job_queue(self) -> StorageJobQueue:
        from shared.adapters.queues import StorageJobQueue

        return StorageJobQueue(self.router)

    @cached_property
    def webhook(self) -> HttpHostWebhook:
        from shared.adapters.host_webhook import HttpHostWebhook

        return HttpHostWebhook(ca_bundle=self.settings.tls_ca_bundle)

    @cached_property
    def secrets(self) -> KeyVaultSecretStore:
        from shared.adapters.keyvault import KeyVaultSecretStore

        return KeyVaultSecretStore(
            self.settings.key_vault_url, self.credential, ca_bundle=self.settings.tls_ca_bundle
        )

    @cached_property
    def tenant_credentials(self) -> TenantCredentials:
        from shared.adapters.graph.credentials import TenantCredentials

        return TenantCredentials(self.settings, self.secrets)

    @cached_property
    def graph(self) -> GraphClients:
        from shared.adapters.graph.client import GraphClients
        from shared.adapters.tables.mailbox_claims import TableMailboxClaims

        return GraphClients(
            self.settings.graph_base_url,
            self.settings.graph_scope,
            self.tenant_credentials.credential_for,
            ca_bundle=self.settings.tls_ca_bundle,
            claims=TableMailboxClaims(self.storage),
        )

    @cached_property
    def services(self) -> Services:
        from shared.adapters.blobs.mail_content import BlobMailContent
        from shared.adapters.graph.calendar import GraphCalendar, GraphSubscriptions
        from shared.adapters.graph.directory import GraphCustomerApps, GraphDirectory
        from shared.adapters.graph.mail import GraphMail
        from shared.adapters.graph.meetings import GraphMeetings
        from shared.adapters.graph.schedules import GraphSchedules
        from shared.adapters.graph.task_changes import GraphTaskChanges
        from shared.adapters.graph.todo import GraphTodo
        from shared.adapters.graph.writes import GraphCalendarWriter
        from shared.adapters.poison_queues import StoragePoisonQueues
        from shared.adapters.tables.appointments import TableAppointments
        from shared.adapters.tables.busy import TableBusy
        from shared.adapters.tables.change_feed import TableChangeFeed
        from shared.adapters.tables.consent_states import TableConsentStates
        from shared.adapters.tables.dead_letters import TableDeadLetters
        from shared.adapters.tables.item_statuses import TableItemStatuses
        from shared.adapters.tables.leases import TableLeases
        from shared.adapters.tables.mail import TableMail
        from shared.adapters.tables.messages import TableMessages, UnrecordedMessages
        from shared.adapters.tables.subscription_index import TableSubscriptionIndex
        from shared.adapters.tables.tasks import TableTasks
        from shared.adapters.tables.tenants import TableTenants
        from shared.adapters.tables.users import TableUsers
        from shared.service.delivery_policy import DeliveryPolicy
        from shared.service.keys import KeyRing
        from shared.service.recent import RecentRows

        config = ConnectorConfig(
            client_id=self.settings.graph_client_id,
            authority_host=self.settings.graph_authority_host,
            public_base_url=self.settings.public_base_url,
            host_webhook_url=self.settings.host_webhook_url,
            reconciliation_days=self.settings.reconciliation_days,
            delivery=DeliveryPolicy(
                max_attempts=self.settings.host_webhook_max_attempts,
                base_delay_seconds=self.settings.host_webhook_retry_seconds,
            ),
        )
        key_for = self.tenant_credentials.key_for
        queue = self.job_queue
        tenant_storage = self.router  # per-tenant tables: the account holding the tenant
        services = Services(
            tenants=TableTenants(self.storage, self.router),
            users=TableUsers(tenant_storage),
            consent_states=TableConsentStates(self.storage),
            secrets=self.secrets,
            feed=TableChangeFeed(tenant_storage),
            jobs=queue,
            directory=GraphDirectory(
                self.graph,
                self.tenant_credentials.key_for,
                authority_host=self.settings.graph_authority_host,
                ca_bundle=self.settings.tls_ca_bundle,
            ),
            customer_apps=GraphCustomerApps(self.graph, self.tenant_credentials.credential),
            clock=self.clock,
            config=config,
            calendar=GraphCalendar(self.graph, key_for),
            subscriptions=GraphSubscriptions(
                self.graph,
                key_for,
                notification_url=config.notification_url,
                lifecycle_url=config.lifecycle_url,
            ),
            item_statuses=TableItemStatuses(tenant_storage),
            leases=TableLeases(tenant_storage),
            subscription_index=TableSubscriptionIndex(self.storage),
            dead_letters=TableDeadLetters(tenant_storage),
            webhook=self.webhook,
            keys=KeyRing(self.secrets),
            appointments=TableAppointments(tenant_storage),
            calendar_writer=GraphCalendarWriter(self.graph, key_for),
            delivery_requests=DeliveryRequests(queue),
            busy=TableBusy(tenant_storage),
            mail=TableMail(tenant_storage),
            mail_content=BlobMailContent(tenant_storage),
            mail_gateway=GraphMail(self.graph, key_for),
            schedules=GraphSchedules(self.graph, key_for),
            meetings=GraphMeetings(self.graph, key_for),
            recent=RecentRows(),
            task_changes=GraphTaskChanges(
                self.graph,
                key_for,
                notification_url=config.notification_url,
                lifecycle_url=config.lifecycle_url,
            ),
            todo=GraphTodo(self.graph, key_for),
            tasks=TableTasks(tenant_storage),
            messages=TableMessages(tenant_storage) if self.settings.message_monitor else UnrecordedMessages(),
            poison=StoragePoisonQueues(self.router),
        )
        return telemetry.instrument(services)  # the same services, measured when telemetry is on

    async def close(self) -> None:
        """Close the clients built so far, the users of a connection first (nothing is built to close it)."""
        built = self.__dict__  # what the cached properties hold
        if "graph" in built:
            await self.graph.close()  # and the tenants' credentials it holds
        if "webhook" in built:
            await self.webhook.aclose()
        if "secrets" in built:
            await self.secrets.close()
        if "router" in built:
            await self.router.close()  # the home account's clients and the shards'
        elif "storage" in built:
            await self.storage.close()
        if "credential" in built:
            await self.credential.close()


_container: Container | None = None


def container() -> Container:
    """The worker's container, built on first use from the app settings."""
    global _container  # noqa: PLW0603 (the worker-wide singleton is the point)
    if _container is None:
        configure_logging()
        settings = Settings.from_environ(os.environ)
        telemetry.configure(settings)  # once per worker; nothing when no exporter is set
        _container = Container(settings)
    return _container


async def close_container() -> None:
    """Close the worker's container, if built, and forget it. The Python worker has no shutdown hook
    (azure-functions-python-worker#1521), so in Azure the process just ends; the local host calls this
    when it stops (its `LOCAL_HOST_ON_STOP` setting), so that no client is left open."""
    global _container
    built, _container = _container, None
    if built is not None:
        await built.close()
    telemetry.uninstall()  # flushes what the exporters still hold


def use_container(replacement: Container | None) -> None:
    """Install (or clear) the container; for tests and tools."""
    global _container  # noqa: PLW0603
    _container = replacement
