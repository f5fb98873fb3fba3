"""The change feed's change types as pydantic models: one per `type`, each with its `data` typed. They
generate the OpenAPI `Change` component (a union on `type`) and the host webhook's delivery body
(`Delivery`, the document's `webhooks` section); the services build the data as `change_json` shows it.

Imported by the OpenAPI document only (pydantic is not imported at the function app's cold start).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from shared.domain.appointments import AppointmentState, CopyRole, CopyState
from shared.domain.calendar import EventKind
from shared.domain.outlook_tasks import RemovalReason, TaskStatus
from shared.domain.tenants import AuthMode, TeamsMethod

Instant = Annotated[str, Field(description="ISO 8601: a UTC time with Z, or a date for an all-day event.")]


class Data(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Person(Data):
    name: str
    address: str


class Attendee(Person):
    type: str = Field(description="required, optional or resource")
    response: str = Field(
        description="none, accepted, declined, tentativelyAccepted, organizer, notResponded"
    )


class EventBody(Data):
    content_type: Literal["text", "html"]
    content: str
    truncated: bool


class SeriesRecurrence(Data):
    """An Outlook series in RFC 5545 terms (`recurring_events: series`), the shape an appointment's
    recurrence is written in. Its occurrences: the RRULE expanded from `start` in `time_zone` (the start's
    wall-clock time on each day), less `exdates`, each exception (an event naming this series) in place of
    the occurrence at its `original_start`."""

    rrule: str | None = Field(
        description="The RFC 5545 RRULE value (checked with dateutil); null when Outlook's pattern has none."
    )
    exdates: list[str] = Field(
        description="Cancelled occurrences: their original local dates (YYYY-MM-DD) in time_zone."
    )
    time_zone: str | None = Field(description="The series' IANA zone (from Outlook's Windows name).")
    start: str = Field(
        description="The first occurrence's start: a local ISO 8601 time with its offset, or a date "
        "(all-day)."
    )
    exact: bool = Field(
        description="False when RFC 5545 cannot express Outlook's pattern exactly: then `reason` says why "
        "and `occurrences` lists the window's occurrences as Outlook places them (their original starts; "
        "cancelled ones left out, each exception in place of its original start as with the rule)."
    )
    reason: str | None = None
    occurrences: list[Instant] | None = None


Reason = Literal["cancelled", "deleted", "declined", "filtered", "out_of_window"]


class Event(Data):
    """An Outlook event as the host sees it. In privacy mode only id, start, end, all_day and show_as, and
    for a series (`recurring_events: series`) its type, recurrence, series_master_id and original_start."""

    id: str
    start: Instant
    end: Instant
    all_day: bool
    show_as: str
    ical_uid: str | None = None
    type: EventKind | None = None
    series_master_id: str | None = None
    subject: str | None = None
    body: EventBody | None = None
    location: str | None = None
    sensitivity: str | None = None
    categories: list[str] | None = None
    organizer: Person | None = None
    attendees: list[Attendee] | None = None
    join_url: str | None = None
    time_zone: str | None = Field(None, description="As Outlook reports it (a Windows or IANA name).")
    meeting_id: str | None = Field(
        None,
        description="The meeting's identity, the same in every staff member's copy (Outlook's iCalUId; for "
        "an exception with `recurring_events: series`, its series' iCalUId): group copies by it.",
    )
    is_organizer: bool | None = Field(
        None, description="True on the organiser's copy of a meeting; null where Outlook did not say."
    )
    response: str | None = Field(
        None,
        description="This staff member's own response: organizer, accepted, tentativelyAccepted, declined, "
        "notResponded or none.",
    )
    recurrence: SeriesRecurrence | None = Field(
        None, description="A series master's rule (`type: seriesMaster`, `recurring_events: series`)."
    )
    original_start: Instant | None = Field(
        None,
        description="An exception's (`recurring_events: series`) start as the rule places it: the occurrence "
        "it replaces.",
    )


class RemovedEvent(Data):
    id: str


class EventData(Data):
    event: Event
    appointment_id: str | None = Field(description="The host appointment it is linked to, if any.")


class EventDeletedData(Data):
    event: RemovedEvent
    appointment_id: str | None
    reason: Reason = Field(
        description="`cancelled`: the organiser cancelled the meeting (told to its attendees and its "
        "organiser alike); `deleted`: removed from the calendar; `declined`: this staff member declined it; "
        "`filtered`: the tenant's settings no longer pass it (import filter, show_free_events, "
        "recurring_events); `out_of_window`: it left the sync window (it ended before the window, was "
        "moved before or past it, or a series has no occurrence left in or after it), so the connector "
        "stops following it (an event moved back into the window is announced anew). A meeting someone "
        "else organises that Outlook removes from this staff member's calendar reads `declined` (Outlook "
        "removes a meeting its attendee declines, and deleting one in Outlook declines it), whether Graph "
        "still holds the copy (Deleted Items) or not."
    )


class UserMigratedData(Data):
    events: int
    linked: int = Field(description="Events linked to appointments the host wrote before.")
    tasks: int | None = Field(
        None, description="Tasks in the user's To Do list, when it was read with the calendar."
    )
    tasks_linked: int | None = Field(None, description="Of those, tasks linked to the host's own tasks.")


class TaskBody(Data):
    content_type: Literal["text", "html"]
    content: str
    truncated: bool


class OutlookTaskJson(Data):
    """A task in the staff member's To Do list as the host sees it."""

    id: str = Field(description="The task's Graph id (a task moved to another list gets a new one).")
    title: str
    body: TaskBody
    status: TaskStatus
    importance: Literal["low", "normal", "high"]
    due: str | None = Field(description="A date (YYYY-MM-DD), the day in the staff member's zone.")
    start: str | None = Field(description="A date (YYYY-MM-DD).")
    reminder_at: Instant | None
    completed_at: Instant | None
    categories: list[str]
    recurrence: dict[str, Any] | None = Field(description="To Do's patternedRecurrence, as Graph gives it.")
    created_at: Instant | None
    last_modified: Instant | None


class RemovedTaskJson(Data):
    id: str


class TaskDeletedData(Data):
    task: RemovedTaskJson
    task_id: str | None = Field(description="The host's task id, when the task is one of the host's.")
    reason: RemovalReason = Field(description="deleted, or moved out of the list (to another list).")


class PrivateTaskJson(Data):
    """A task as privacy mode shows it on every `task.*` change: its ids, status and days, no words (title,
    body, checklist, categories). Its list is the staff member's (the change's `staff_id`)."""

    id: str
    status: TaskStatus
    due: str | None = Field(description="A date (YYYY-MM-DD), the day in the staff member's zone.")
    start: str | None = Field(description="A date (YYYY-MM-DD).")
    completed_at: Instant | None


class TaskData(Data):
    task: OutlookTaskJson | PrivateTaskJson = Field(
        description="The task; in the tenant's privacy mode only its id, status and days (no title, body, "
        "checklist, categories or reminder), as an event is only its free/busy there."
    )
    task_id: str | None = Field(description="The host's task id, when the task is one of the host's.")


class TaskChangedInOutlookData(Data):
    task_id: str = Field(description="The host's task.")
    change: Literal["updated", "deleted", "moved"] = Field(
        description="What was done to it in To Do: changed, deleted, or moved out of the list."
    )
    resolution: Literal["kept", "reverted", "recreated"] = Field(
        description="The tenant's conflict policy: outlook_wins keeps To Do's version until the host's next "
        "revision; host_wins writes the host's revision again (recreated when it was deleted or moved)."
    )
    graph_task_id: str = Field(description="The To Do task that was changed.")
    task: OutlookTaskJson | PrivateTaskJson | None = Field(
        None,
        description="To Do's version as `task.*` changes show it (only state and days in privacy mode); "
        "none once deleted or moved.",
    )


class TenantMigratedData(Data):
    users: int
    failed: int


class CopyStatus(Data):
    staff_id: str
    role: CopyRole
    state: CopyState = Field(
        description="`disabled`: the staff member's calendar_to_outlook switch is off; the copy was left as "
        "it was (the error says so) and is brought up to date when the switch is on again."
    )
    event_id: str | None
    ical_uid: str | None
    join_url: str | None
    error: str | None


class TeamsMeetingJson(Data):
    """A video appointment's one Teams meeting."""

    method: TeamsMethod = Field(
        description="How it was made (it keeps that method when the tenant's changes)."
    )
    join_url: str
    conference_id: str | None
    toll_number: str | None = Field(
        description="The dial-in number, where the organiser has audio conferencing."
    )
    meeting_id: str | None = Field(
        description="The standalone meeting's id (access_policy, service_account)."
    )


class AppointmentOutcomeData(Data):
    appointment_id: str
    revision: int
    state: AppointmentState
    meeting: TeamsMeetingJson | None = None
    staff: list[CopyStatus]


class ChangedInOutlookData(Data):
    appointment_id: str
    change: str
    resolution: str
    event_id: str | None
    event: Event | None = Field(
        None, description="Outlook's version as `event.*` changes show it (only free/busy in privacy mode)."
    )


class TenantConnectedData(Data):
    auth_mode: AuthMode


class TeamsMethodChangedData(Data):
    previous_method: TeamsMethod
    method: TeamsMethod
    existing_meetings: Literal["kept"] = Field(
        description="Meetings made before keep the method they were made with and their join URLs; only new "
        "video appointments use the new method."
    )


class ConsentFailedData(Data):
    reason: str
    message: str


class TenantDisconnectedData(Data):
    pass


class ConsentRevokedData(Data):
    reason: str


class CredentialExpiringData(Data):
    expires_at: str = Field(json_schema_extra={"format": "date-time"})
    expired: bool


class MailSentData(Data):
    message_id: str = Field(description="The host's message id (the PUT's).")
    staff_id: str
    internet_message_id: str | None = Field(description="The sent message's Internet Message-ID.")
    sent_at: str = Field(json_schema_extra={"format": "date-time"})
    attempts: int


class MailFailedData(Data):
    message_id: str
    staff_id: str
    reason: str = Field(description="Why, in words that say what to do.")
    attempts: int


class TaskOutcomeData(Data):
    task_id: str = Field(description="The host's task id (the PUT's).")
    staff_id: str | None = Field(description="Whose To Do list the task is for.")
    revision: int = Field(description="The revision this outcome is about (the GET's ETag).")
    state: Literal["synced", "partial", "failed"]
    deleted: bool = Field(description="The host deleted the task: it was removed from To Do.")
    graph_task_id: str | None = Field(description="The To Do task's id (null when not written).")
    list_id: str | None = Field(description="The To Do list's id (null when not written).")
    error: str | None = Field(description="failed or partial: why, in words that say what to do.")


class ChangeBase(BaseModel):
    sequence: int
    tenant_id: str
    staff_id: str | None
    occurred_at: str = Field(json_schema_extra={"format": "date-time"})


class EventCreated(ChangeBase):
    type: Literal["event.created"]
    data: EventData


class EventUpdated(ChangeBase):
    type: Literal["event.updated"]
    data: EventData


class EventDeleted(ChangeBase):
    type: Literal["event.deleted"]
    data: EventDeletedData


class TaskCreated(ChangeBase):
    type: Literal["task.created"]
    data: TaskData


class TaskUpdated(ChangeBase):
    """A task changed in To Do: edited, completed (`status` completed, `completed_at` set) or reopened."""

    type: Literal["task.updated"]
    data: TaskData


class TaskDeleted(ChangeBase):
    type: Literal["task.deleted"]
    data: TaskDeletedData


class TaskChangedInOutlook(ChangeBase):
    """The host's task changed, deleted or moved in To Do by the staff member: the tenant's policy decided."""

    type: Literal["task.changed_in_outlook"]
    data: TaskChangedInOutlookData


class UserMigrated(ChangeBase):
    type: Literal["user.migrated"]
    data: UserMigratedData


class TenantMigrated(ChangeBase):
    type: Literal["tenant.migrated"]
    data: TenantMigratedData


class AppointmentSynced(ChangeBase):
    type: Literal["appointment.synced"]
    data: AppointmentOutcomeData


class AppointmentFailed(ChangeBase):
    type: Literal["appointment.failed"]
    data: AppointmentOutcomeData


class AppointmentChangedInOutlook(ChangeBase):
    type: Literal["appointment.changed_in_outlook"]
    data: ChangedInOutlookData


class TenantTeamsMethodChanged(ChangeBase):
    type: Literal["tenant.teams_method_changed"]
    data: TeamsMethodChangedData


class FeedRetentionChangedData(Data):
    previous_days: int = Field(description="How long the feed kept a change until now.")
    days: int = Field(
        description="How long the feed keeps a change from now on (`retention_days` of the pull feed): "
        "read the feed at least this often, or a cursor older than that is answered 410."
    )


class TenantFeedRetentionChanged(ChangeBase):
    type: Literal["tenant.feed_retention_changed"]
    data: FeedRetentionChangedData


class TenantConnected(ChangeBase):
    type: Literal["tenant.connected"]
    data: TenantConnectedData


class TenantConsentFailed(ChangeBase):
    type: Literal["tenant.consent_failed"]
    data: ConsentFailedData


class TenantDisconnected(ChangeBase):
    type: Literal["tenant.disconnected"]
    data: TenantDisconnectedData


class TenantConsentRevoked(ChangeBase):
    type: Literal["tenant.consent_revoked"]
    data: ConsentRevokedData


class TenantCredentialExpiring(ChangeBase):
    type: Literal["tenant.credential_expiring"]
    data: CredentialExpiringData


class MailSent(ChangeBase):
    type: Literal["mail.sent"]
    data: MailSentData


class MailFailed(ChangeBase):
    type: Literal["mail.failed"]
    data: MailFailedData


class TaskSynced(ChangeBase):
    type: Literal["task.synced"]
    data: TaskOutcomeData


class TaskFailed(ChangeBase):
    type: Literal["task.failed"]
    data: TaskOutcomeData


AnyChange = Annotated[
    EventCreated
    | EventUpdated
    | EventDeleted
    | TaskCreated
    | TaskUpdated
    | TaskDeleted
    | TaskChangedInOutlook
    | UserMigrated
    | TenantMigrated
    | AppointmentSynced
    | AppointmentFailed
    | AppointmentChangedInOutlook
    | TenantConnected
    | TenantTeamsMethodChanged
    | TenantFeedRetentionChanged
    | TenantConsentFailed
    | TenantDisconnected
    | TenantConsentRevoked
    | TenantCredentialExpiring
    | MailSent
    | MailFailed
    | TaskSynced
    | TaskFailed,
    Field(discriminator="type"),
]


class Change(RootModel[AnyChange]):
    """One change, the same in the pull feed and the webhook; `data` as its `type` says."""


class Delivery(BaseModel):
    """The host webhook's body: a batch of one tenant's changes, in feed order. Signed in
    `X-Connector-Signature` (`t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`); a 2xx takes it, anything
    else is retried and finally kept as a dead letter (the changes stay in the pull feed)."""

    tenant_id: str
    changes: list[Change]


CHANGE_MODELS: tuple[type[BaseModel], ...] = (Change, Delivery)
