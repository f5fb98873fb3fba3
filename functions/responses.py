"""The host API's response bodies as pydantic models: `functions/views.py` shapes each answer through them,
and they generate the OpenAPI components of the answers (`functions/openapi.py`).

Times are given as the API writes them (`iso`: UTC with a `Z`), and the settings and the appointment as
the request models describe them (their components are referenced, not repeated). pydantic is imported
with this module, which the views import when they first shape an answer, never at the cold start.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic.json_schema import SkipJsonSchema

from shared.domain.appointments import AppointmentState
from shared.domain.mail import MailState
from shared.domain.tasks import TaskState
from shared.domain.teams import TeamsStatus
from shared.domain.tenants import AuthMode, TenantState
from shared.domain.users import MatchedBy, MatchStatus, SyncState
from shared.service.change_types import Change, CopyStatus, TeamsMeetingJson
from shared.service.monitor import Direction as MessageDirection
from shared.service.monitor import MessageStatus as MessageStatusName

Time = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
# A component of the document by name (`functions/openapi.py` makes it a $ref; pydantic's own refs are
# to its models only).
SettingsJson = Annotated[dict[str, Any], WithJsonSchema({"x-component": "Settings"})]
AppointmentJson = Annotated[
    dict[str, Any] | None,
    WithJsonSchema({"oneOf": [{"x-component": "AppointmentInput"}, {"type": "null"}]}),
]


class Answer(BaseModel):
    model_config = ConfigDict(frozen=True)

    @classmethod
    def of(cls, **members: Any) -> Self:
        """An answer from the connector's own records: not validated again (a stored value a later, tighter
        rule would refuse is still shown); the schemathesis test holds the answers to the document."""
        return cls.model_construct(**members)

    def as_json(self) -> dict[str, Any]:
        """The JSON object: members not given (`consent_url`, `progress` …) are left out."""
        return self.model_dump(mode="json", exclude_unset=True)


class TenantAuth(Answer):
    mode: AuthMode
    client_id: str | None = Field(None, description="The customer's own app.")
    client_secret_expires_at: Time | None = None


class Progress(Answer):
    """Derived from the users on every read. Every staff member is work: one not matched yet, or matched
    and not migrated yet, is to do; one synced, in error, or with nothing to migrate (unmatched, no mailbox,
    forbidden, disabled) is done. `percent` is 0 until there is work, never goes down while the staff stay
    the same, and is 100 once the phase is `done`, never before (a stopped tenant shows what was done before
    it stopped)."""

    phase: Literal["waiting_for_consent", "matching", "migrating", "done", "stopped"]
    percent: int = Field(ge=0, le=100)
    total: int = Field(ge=0, description="Every staff member of the tenant.")
    done: int = Field(ge=0, description="Those with nothing left to do.")
    by_match: dict[str, int]
    by_state: dict[str, int] = Field(description="The matched users by sync state.")
    eta_seconds: int | None = Field(
        ge=0,
        description="Seconds left at the rate users were migrated since this migration began (the "
        "connection, or when staff added later were stored); null until one user was migrated, 0 when done.",
    )


class Tenant(Answer):
    tenant_id: str
    directory_id: str
    display_name: str
    state: TenantState = Field(
        description="Once the staff were first matched, the users decide: `migrating` while any has work "
        "left (also staff added later), else `degraded` while any is in error, else `active`."
    )
    auth: TenantAuth
    settings: SettingsJson
    credential_expires_at: Time | None
    credential_expiring: bool
    last_error: str | None
    connected_at: Time | None
    created_at: Time | None
    updated_at: Time | None
    progress: Progress | None = None
    consent_url: str | None = Field(None, description="Only when a consent link was just issued.")
    dead_deliveries: int | None = Field(
        None, description="The console's view only: batches of changes the host's webhook never took."
    )


class TenantList(Answer):
    """A page of the tenants, in tenant id order."""

    value: list[Tenant]
    next_cursor: str | None = Field(None, description="The next page's `cursor`; null on the last page.")
    total: int = Field(description="Every tenant's count, not only this page's.")


class Switches(Answer):
    """What the connector does for the staff member (set on the staff PUT or the console's mass update;
    later capabilities add members)."""

    calendar_to_outlook: bool = Field(description="The host's appointments are written to their calendar.")
    calendar_from_outlook: bool = Field(description="Their Outlook events reach the host (the feed).")
    video: bool = Field(description="Their copies carry the Teams meeting; they may organise it.")
    mail: bool = Field(description="The host may send mail from their mailbox.")
    tasks_to_outlook: bool = Field(description="The host's tasks are written to their To Do list.")
    tasks_from_outlook: bool = Field(description="What they change in that To Do list reaches the host.")


class TaskSync(Answer):
    """Outlook to host for the user's To Do list (apart from the calendar's state)."""

    state: SyncState = Field(description="pending until the list was first read and linked.")
    list_id: str | None = Field(description="The To Do list read (the connector's list in the mailbox).")
    tasks: int = Field(description="Tasks of the list the connector follows.")
    last_sync_at: Time | None
    last_error: str | None = Field(description="Why the list could not be read, in words one can act on.")
    subscription_expires_at: Time | None


class User(Answer):
    staff_id: str
    email: str | None
    upn: str | None
    display_name: str
    enabled: bool
    switches: Switches
    match: MatchStatus
    matched_by: MatchedBy | None
    match_reason: str | None
    graph_user_id: str | None
    state: SyncState
    last_sync_at: Time | None
    last_error: str | None
    subscription_expires_at: Time | None
    teams: TeamsStatus | None = Field(
        description="Whether the connector can give this user's video appointments a Teams meeting "
        "(null: not looked up yet)."
    )
    teams_reason: str | None = Field(description="unmatched or forbidden: why, in words an admin can act on.")
    task_sync: TaskSync
    todo_list_name: str | None = Field(
        description="The To Do list the host's tasks go to: the staff member's own name (staff PUT), else "
        "the name the list was found or made under (the tenant's `todo_list_name`); null until then."
    )
    todo_list_id: str | None = Field(description="That list's Graph id, once it was found or made.")
    todo_list_reason: str | None = Field(
        description="Why the list cannot be found or made (the calendar is not affected), for an admin "
        "to act on."
    )
    updated_at: Time | None


class UserPage(Answer):
    value: list[User]
    next_cursor: str | None
    total: int


class SwitchesUpdated(Answer):
    """The staff members a switches update changed, as they are now."""

    value: list[User]


class DeadLetter(Answer):
    first_sequence: int
    last_sequence: int
    attempts: int
    reason: str
    failed_at: Time | None


class DeadLetterList(Answer):
    value: list[DeadLetter]


class Message(Answer):
    """One message of the monitor. `push`: an appointment, task or mail write (key: the host's id; detail:
    the Graph ids, the copy's state, the error); `pull`: a sync run (key: the subscription id; detail: what
    the read found, the changes it published and their sequence numbers); `delivery`: a post to the host's
    webhook (key: the delivery id; detail: the range, the status code, the latency)."""

    monitor_id: str = Field(description="Orders the tenant's messages, newest first; the cursor of a page.")
    direction: MessageDirection
    kind: str = Field(description="push: appointment, mail or task; pull: the run's kind; delivery: deliver.")
    status: MessageStatusName
    staff_id: str | None
    key: str
    attempts: int
    started_at: Time
    at: Time = Field(description="When it ended.")
    detail: dict[str, Any]


class MessagePage(Answer):
    value: list[Message]
    next_cursor: str | None = Field(description="Pass as `cursor` for older messages; null at the end.")


class MessageRetried(Answer):
    status: Literal["queued"]
    queued: Literal["write", "resync", "delivery"]


class SubscriptionState(Answer):
    subscription_id: str
    expires_at: Time | None


class DirectionState(Answer):
    """One direction's last message and last failure in the monitor (within the tenant's retention)."""

    last_at: Time | None
    last_status: MessageStatusName | None
    last_error_at: Time | None
    last_error: str | None


class TodoListState(Answer):
    """The user's To Do list: the one the host's tasks go to (its id and the name it was found or made
    under, or why none can be), and the `todoTask` subscription Outlook's task changes come back through."""

    list_id: str | None = Field(description="null until a task needs the list, or while it cannot be made.")
    name: str | None
    reason: str | None = Field(description="Why the list cannot be found or made, for a person to act on.")
    subscription: SubscriptionState | None = Field(description="The task subscription and its expiry.")


class UserDetail(Answer):
    """A user's own page: the user, the subscription and its expiry, the To Do list and its subscription,
    whether a delta link is held and since when (never the link), and per direction the last message and
    the last error."""

    user: User
    subscription: SubscriptionState | None
    todo_list: TodoListState | None = Field(description="null while the user has no list and no reason.")
    delta_link_held: bool
    delta_link_since: Time | None = Field(description="When the complete read that began the held link ran.")
    push: DirectionState
    pull: DirectionState


class DeliveryHoldState(Answer):
    """Delivery to the host's webhook: held or not; held, the changes it kept back (the backlog) and the
    first of them, delivered in order at the release."""

    held: bool
    held_at: Time | None
    backlog: int
    from_sequence: int | None


class Released(Answer):
    status: Literal["released"]
    queued_changes: int


class PoisonMessage(Answer):
    """A job that failed every try, on `<queue>-poison`: its kind, why, when, and its ids."""

    queue: str
    poison_id: str
    kind: str
    reason: str
    failed_at: Time | None
    attempts: int | None
    job: dict[str, Any]


class PoisonQueue(Answer):
    """A poison queue holding messages: how many (every tenant's, Storage's approximate count) and how many
    of the first were looked at (Storage peeks 32 at most); the tenant's among those are listed."""

    queue: str
    messages: int
    looked_at: int


class PoisonList(Answer):
    value: list[PoisonMessage]
    queues: list[PoisonQueue]
    complete: bool = Field(description="false: more messages wait behind the first 32 of a queue.")


class Appointment(Answer):
    """The host's last version of the appointment, and per staff member what Outlook holds."""

    appointment_id: str
    revision: int
    updated_at: Time
    state: AppointmentState
    appointment: AppointmentJson
    meeting: TeamsMeetingJson | None = Field(
        description="A video appointment's one Teams meeting: every copy carries its join details."
    )
    staff: list[CopyStatus]


class Mail(Answer):
    """A message sent from a staff member's mailbox: where it stands. Nothing of its content is kept."""

    message_id: str
    from_staff_id: str
    state: MailState = Field(
        description="queued (accepted), sending (a draft exists and a send was requested), sent, failed."
    )
    recipients: int = Field(description="To, Cc and Bcc together.")
    save_to_sent_items: bool
    attempts: int = Field(description="Attempts that reached Microsoft Graph (throttled ones too).")
    created_at: Time
    updated_at: Time
    sent_at: Time | None
    internet_message_id: str | None
    error: str | None = Field(
        description="When failed, why and what to do; while on its way, the last transient problem."
    )


class ChecklistStep(Answer):
    id: str
    title: str
    checked: bool


class TaskJson(Answer):
    """The task as the host last sent it (dates and times as ISO 8601)."""

    staff_id: str
    title: str
    body: str
    body_type: str
    due: str | None = Field(description="A date, or a date-time with its offset.")
    start: str | None
    reminder_at: str | None
    completed_at: str | None
    time_zone: str | None
    importance: str
    status: str
    categories: list[str]
    recurrence: str | None
    checklist: list[ChecklistStep]


class Task(Answer):
    """The host's last version of the task, and where To Do holds it."""

    task_id: str
    revision: int = Field(description="The ETag.")
    updated_at: Time
    state: TaskState = Field(
        description="pending (a revision not written yet), synced, partial (written, some checklist steps "
        "not), failed (not written: `error` says why)."
    )
    error: str | None
    task: TaskJson | None = Field(description="null once the host deleted it.")
    staff_id: str | None = Field(description="Whose To Do list holds the written task.")
    graph_task_id: str | None = Field(description="The To Do task's id.")
    list_id: str | None = Field(description="The To Do list's id.")
    written_revision: int = Field(description="The revision To Do holds (0: none).")


class ErrorDetail(Answer):
    code: str = Field(examples=["invalid_input"])
    message: str
    field: str | SkipJsonSchema[None] = Field(
        None,
        description="The request field at fault, if any: a body member by its path (`staff_ids[1]`, "
        "`settings.import_filter.categories`), a parameter by its name, `body` for the body as a whole.",
    )


class Error(Answer):
    """Every 4xx and 5xx JSON answer (`functions/http.py` writes it)."""

    error: ErrorDetail


class HealthChecks(Answer):
    storage: str = Field(description="ok, timeout, or error: and the exception's name.")
    key_vault: str = Field(description="As storage.")


class Health(Answer):
    status: Literal["ok", "degraded"]
    version: str
    checks: HealthChecks


class ChangePage(Answer):
    """The pull feed's page (written from the stored changes as they are)."""

    value: list[Change]
    cursor: str = Field(description="The sequence number to pass as `cursor` next time.")
    retention_days: int = Field(
        description="How long the feed keeps a change (the tenant's `feed_retention_days`). A cursor older "
        "than that is answered 410: read at least this often."
    )


class Queued(Answer):
    """Queued work (a rematch)."""

    status: Literal["queued"]


class QueuedUser(Queued):
    """A user's resync, queued; the user as it is now."""

    user: User


class QueuedUsers(Queued):
    users: int = Field(ge=0, description="How many users' resyncs were queued.")


class QueuedDeliveries(Queued):
    deliveries: int = Field(ge=0, description="How many batches were queued for delivery again.")


class ConsoleLink(Answer):
    url: Annotated[str, Field(json_schema_extra={"format": "uri"})]
    expires_at: Time


DateOrTime = Annotated[
    str,
    Field(
        description="A UTC date-time (with Z), or a date (YYYY-MM-DD) for an all-day event.",
        json_schema_extra={"anyOf": [{"format": "date-time"}, {"format": "date"}]},
    ),
]
ShowAs = Literal["free", "tentative", "busy", "oof", "workingElsewhere", "unknown"]
Source = Literal["synced", "graph"]


class BusyTime(Answer):
    """A time the staff member's calendar (or one of the host's appointments) holds; never its details."""

    start: DateOrTime
    end: DateOrTime = Field(description="Exclusive; for an all-day event the day after its last.")
    show_as: ShowAs
    all_day: bool


class StaffSource(Answer):
    """Where a staff member's busy times came from, and how fresh they are."""

    staff_id: str
    source: Source | None = Field(
        description="synced: the connector's synced state; graph: Graph's getSchedule (the staff member "
        "is not synced yet, or the span is outside the synced window); null: not read (see error)."
    )
    as_of: Time | None = Field(
        description="synced: when a sync run last brought the state up to date (as the answering worker "
        "read the staff member's row, at most 5 seconds before: possibly a run earlier, never later); "
        "graph: when Graph answered."
    )
    error: str | None = Field(
        description="Why the staff member could not be read (unknown, not matched, disabled, Graph's "
        "error); such a staff member is never counted as free."
    )


class StaffBusy(Answer):
    staff_id: str
    source: Source
    as_of: Time
    busy: list[BusyTime] = Field(description="Overlapping [start, end), by start; free events included.")


class SlotGroup(Answer):
    staff_ids: list[str] = Field(
        description="The group's staff free for the slot, as listed or least booked first (ranking)."
    )


class Slot(Answer):
    start: Time
    end: Time
    participants: list[SlotGroup] = Field(description="Per participant group, in the question's order.")


class FreePeriod(Answer):
    start: Time
    end: Time


class Availability(Answer):
    """The slots (format slots) or the free periods (format periods), earliest first, and per staff member
    its source."""

    slots: list[Slot] | None = None
    periods: list[FreePeriod] | None = None
    staff: list[StaffSource]


RESPONSE_MODELS: tuple[type[BaseModel], ...] = (
    TenantList,
    UserPage,
    SwitchesUpdated,
    DeadLetterList,
    MessagePage,
    Message,
    MessageRetried,
    UserDetail,
    DeliveryHoldState,
    Released,
    PoisonQueue,
    PoisonList,
    DeadLetter,
    Appointment,
    Mail,
    Task,
    Error,
    Health,
    ChangePage,
    Queued,
    QueuedUser,
    QueuedUsers,
    QueuedDeliveries,
    ConsoleLink,
    StaffBusy,
    Availability,
)
