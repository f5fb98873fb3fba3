"""What a handler may use: the ports, the clock and the connector's fixed configuration."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Protocol
from urllib.parse import urlencode

from shared.service.delivery_policy import DeliveryPolicy
from shared.service.delivery_requests import DeliveryRequests
from shared.service.keys import KeyRing
from shared.service.ports import JobQueue
from shared.service.ports.appointments import AppointmentRepository, CalendarWriter
from shared.service.ports.availability import BusyStore
from shared.service.ports.clock import Clock
from shared.service.ports.feed import ChangeFeed, DeadLetterRepository, HostWebhook
from shared.service.ports.graph import (
    CalendarGateway,
    CustomerAppValidator,
    DirectoryGateway,
    ScheduleGateway,
    SubscriptionGateway,
)
from shared.service.ports.mail import MailContentStore, MailGateway, MailRepository
from shared.service.ports.meetings import MeetingGateway
from shared.service.ports.monitor import MessageLog
from shared.service.ports.poison import PoisonQueues
from shared.service.ports.secret_store import SecretStore
from shared.service.ports.sync_storage import ItemStatusRepository, LeaseStore, SubscriptionIndex
from shared.service.ports.task_changes import TaskChangesGateway
from shared.service.ports.tenancy import ConsentStateRepository, TenantRepository, UserRepository
from shared.service.ports.todo import TaskRepository, TodoGateway
from shared.service.recent import RecentRows

GRAPH_DEFAULT_SCOPE: Final = "https://graph.microsoft.com/.default"


@dataclass(frozen=True, slots=True)
class ConnectorConfig:
    client_id: str  # the connector's multi-tenant app
    authority_host: str  # https://login.microsoftonline.com, or the emulator
    public_base_url: str  # where Entra and Graph reach this function app
    host_webhook_url: str | None = None  # where changes are delivered (signed); None: the pull feed only
    delivery: DeliveryPolicy = field(default_factory=DeliveryPolicy)
    reconciliation_days: int = 7  # each user is read whole once in this many nights (RECONCILIATION_DAYS)

    @property
    def consent_redirect_uri(self) -> str:
        return f"{self.public_base_url}/api/consent/callback"

    @property
    def notification_url(self) -> str:
        return f"{self.public_base_url}/api/graph/notifications"

    @property
    def lifecycle_url(self) -> str:
        return f"{self.public_base_url}/api/graph/lifecycle"

    def consent_url(self, tenant_id: str, state: str) -> str:
        query = urlencode(
            {
                "client_id": self.client_id,
                "scope": GRAPH_DEFAULT_SCOPE,
                "redirect_uri": self.consent_redirect_uri,
                "state": state,
            }
        )
        return f"{self.authority_host}/{tenant_id}/v2.0/adminconsent?{query}"


# One read-only member each: a handler's ports are a Protocol made of these (`class SyncPorts(UsesCalendar,
# UsesJobs, ..., Protocol)`) and of the ports of the handlers it calls, so its signature names what it uses
# and mypy holds it to that. `Services` has every member and satisfies them all.
class UsesTenants(Protocol):
    @property
    def tenants(self) -> TenantRepository: ...


class UsesUsers(Protocol):
    @property
    def users(self) -> UserRepository: ...


class UsesConsentStates(Protocol):
    @property
    def consent_states(self) -> ConsentStateRepository: ...


class UsesSecrets(Protocol):
    @property
    def secrets(self) -> SecretStore: ...


class UsesFeed(Protocol):
    @property
    def feed(self) -> ChangeFeed: ...


class UsesJobs(Protocol):
    @property
    def jobs(self) -> JobQueue: ...


class UsesDirectory(Protocol):
    @property
    def directory(self) -> DirectoryGateway: ...


class UsesCustomerApps(Protocol):
    @property
    def customer_apps(self) -> CustomerAppValidator: ...


class UsesClock(Protocol):
    @property
    def clock(self) -> Clock: ...


class UsesConfig(Protocol):
    @property
    def config(self) -> ConnectorConfig: ...


class UsesCalendar(Protocol):
    @property
    def calendar(self) -> CalendarGateway: ...


class UsesSubscriptions(Protocol):
    @property
    def subscriptions(self) -> SubscriptionGateway: ...


class UsesItemStatuses(Protocol):
    @property
    def item_statuses(self) -> ItemStatusRepository: ...


class UsesLeases(Protocol):
    @property
    def leases(self) -> LeaseStore: ...


class UsesSubscriptionIndex(Protocol):
    @property
    def subscription_index(self) -> SubscriptionIndex: ...


class UsesDeadLetters(Protocol):
    @property
    def dead_letters(self) -> DeadLetterRepository: ...


class UsesWebhook(Protocol):
    @property
    def webhook(self) -> HostWebhook: ...


class UsesKeys(Protocol):
    @property
    def keys(self) -> KeyRing: ...


class UsesAppointments(Protocol):
    @property
    def appointments(self) -> AppointmentRepository: ...


class UsesCalendarWriter(Protocol):
    @property
    def calendar_writer(self) -> CalendarWriter: ...


class UsesDeliveryRequests(Protocol):
    @property
    def delivery_requests(self) -> DeliveryRequests: ...


class UsesBusy(Protocol):
    @property
    def busy(self) -> BusyStore: ...


class UsesRecentRows(Protocol):
    @property
    def recent(self) -> RecentRows: ...


class UsesMail(Protocol):
    @property
    def mail(self) -> MailRepository: ...


class UsesMailContent(Protocol):
    @property
    def mail_content(self) -> MailContentStore: ...


class UsesMailGateway(Protocol):
    @property
    def mail_gateway(self) -> MailGateway: ...


class UsesSchedules(Protocol):
    @property
    def schedules(self) -> ScheduleGateway: ...


class UsesMeetings(Protocol):
    @property
    def meetings(self) -> MeetingGateway: ...


class UsesTaskChanges(Protocol):
    @property
    def task_changes(self) -> TaskChangesGateway: ...


class UsesTasks(Protocol):
    @property
    def tasks(self) -> TaskRepository: ...


class UsesTodo(Protocol):
    @property
    def todo(self) -> TodoGateway: ...


class UsesMessages(Protocol):
    @property
    def messages(self) -> MessageLog: ...


class UsesPoison(Protocol):
    @property
    def poison(self) -> PoisonQueues: ...


@dataclass(frozen=True, slots=True)
class Services:
    """Every port, built once per worker by the composition root. A handler takes the part it uses, a
    Protocol of read-only members beside it (`AppointmentReadPorts`, `SyncPorts`, ...), which this
    satisfies structurally."""

    tenants: TenantRepository
    users: UserRepository
    consent_states: ConsentStateRepository
    secrets: SecretStore
    feed: ChangeFeed
    jobs: JobQueue
    directory: DirectoryGateway
    customer_apps: CustomerAppValidator
    clock: Clock
    config: ConnectorConfig
    calendar: CalendarGateway
    subscriptions: SubscriptionGateway
    item_statuses: ItemStatusRepository
    leases: LeaseStore
    subscription_index: SubscriptionIndex
    dead_letters: DeadLetterRepository
    webhook: HostWebhook
    keys: KeyRing
    appointments: AppointmentRepository
    calendar_writer: CalendarWriter
    delivery_requests: DeliveryRequests  # this worker's delivery jobs, merged (see the module)
    busy: BusyStore  # the availability state: busy index, working hours, host holds
    mail: MailRepository  # the messages sent from staff mailboxes (table `mail`)
    mail_content: MailContentStore  # their content until sent or failed (blob container `outgoing-mail`)
    mail_gateway: MailGateway  # the sender's mailbox in Graph: drafts, upload sessions, send
    schedules: ScheduleGateway  # Graph's getSchedule, for staff the synced state cannot answer for
    meetings: MeetingGateway  # standalone Teams meetings
    recent: RecentRows  # tenant and user rows read in the last seconds, for the availability API only
    task_changes: TaskChangesGateway  # To Do lists' tasks delta and todoTask subscriptions
    todo: TodoGateway  # the staff's To Do lists and the host's tasks in them
    tasks: TaskRepository  # the host's tasks (table `tasks`)
    messages: MessageLog  # the message monitor: pushes, pulls and deliveries, kept a few days
    poison: PoisonQueues  # `<queue>-poison`: jobs that failed every try
