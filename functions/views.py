"""JSON shapes of the host API, each through its response model (`functions/responses.py`), which also
generates its OpenAPI component. The models are imported when an answer is first shaped (pydantic is not
imported at the cold start)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from shared.domain.appointments import AppointmentRecord, CopyRole, CopyState
from shared.domain.mail import MailRecord
from shared.domain.progress import Progress, tenant_state
from shared.domain.tasks import TaskDay, TaskRecord
from shared.domain.tenants import Tenant, TenantSettings
from shared.domain.users import UserRecord
from shared.service.appointment_commands import appointment_document
from shared.service.appointment_writes import copies_json
from shared.service.availability import Answer as AvailabilityAnswer
from shared.service.availability import BusyEntry, StaffBusy
from shared.service.change_json import change_json, iso  # one shape for the pull feed and the webhook
from shared.service.deliveries import HoldState
from shared.service.monitor import MessagePage, MonitoredMessage
from shared.service.poison import PoisonEntry, PoisonListing
from shared.service.records import DeadLetter, UserPage
from shared.service.user_detail import DirectionSummary, UserDetail

if TYPE_CHECKING:  # imported where an answer is shaped: pydantic is not imported at the cold start
    from functions import responses

__all__ = ["change_json", "iso", "mail_json", "settings_json", "tenant_json", "user_json"]


def _copied(record: object, *names: str) -> dict[str, Any]:
    """The named members of a record as an answer's same-named fields: what most answers are, a datetime
    as ISO text (UTC, `iso`)."""
    copied: dict[str, Any] = {}
    for name in names:
        value = getattr(record, name)
        copied[name] = iso(value) if isinstance(value, datetime) else value
    return copied


def settings_json(settings: TenantSettings) -> dict[str, Any]:
    data = asdict(settings)
    data["import_filter"]["categories"] = list(settings.import_filter.categories)
    return data


def tenant_json(
    tenant: Tenant, now: datetime, progress: Progress | None = None, consent_url: str | None = None
) -> dict[str, Any]:
    """The tenant as the API shows it. With its progress, the state is the one its users decide (a tenant
    migrating staff added later shows `migrating`, one with users in error `degraded`)."""
    from functions import responses

    auth: dict[str, Any] = {"mode": tenant.auth_mode}
    if tenant.customer_app:
        auth["client_id"] = tenant.customer_app.client_id
        auth["client_secret_expires_at"] = iso(tenant.customer_app.secret_expires_at)
    body: dict[str, Any] = {
        "tenant_id": tenant.tenant_id,
        "directory_id": tenant.directory_id,
        "display_name": tenant.display_name,
        "state": tenant_state(tenant.state, progress) if progress else tenant.state,
        "auth": responses.TenantAuth.of(**auth),
        "settings": settings_json(tenant.settings),
        "credential_expires_at": iso(tenant.credential_expires_at()),
        "credential_expiring": tenant.credential_expiring(now),
        "last_error": tenant.last_error,
        "connected_at": iso(tenant.connected_at),
        "created_at": iso(tenant.created_at),
        "updated_at": iso(tenant.updated_at),
    }
    if progress is not None:
        body["progress"] = responses.Progress.of(**progress.as_json())
    if consent_url is not None:
        body["consent_url"] = consent_url
    return responses.Tenant.of(**body).as_json()


def user_json(user: UserRecord) -> dict[str, Any]:
    return _user(user).as_json()


def _user(user: UserRecord) -> responses.User:
    from functions import responses

    staff = user.staff
    return responses.User.of(
        **_copied(staff, "staff_id", "email", "upn", "display_name", "enabled"),
        switches=responses.Switches.of(**staff.switches.as_dict()),
        **_copied(user, "match", "matched_by", "match_reason", "graph_user_id"),
        state=user.sync_state,
        **_copied(user, "last_sync_at", "last_error", "subscription_expires_at", "teams", "teams_reason"),
        task_sync=responses.TaskSync.of(
            **_copied(
                user.task_sync,
                "state",
                "list_id",
                "tasks",
                "last_sync_at",
                "last_error",
                "subscription_expires_at",
            )
        ),
        todo_list_name=staff.todo_list_name or user.todo_list_name,
        **_copied(user, "todo_list_id", "todo_list_reason", "updated_at"),
    )


def user_page_json(page: UserPage) -> dict[str, Any]:
    """A page of users (the host API's and the console's)."""
    from functions import responses

    users = [_user(u) for u in page.users]
    return responses.UserPage.of(value=users, next_cursor=page.next_cursor, total=page.total).as_json()


def dead_letter_json(letter: DeadLetter) -> dict[str, Any]:
    from functions import responses

    return responses.DeadLetter.of(
        **_copied(letter, "first_sequence", "last_sequence", "attempts", "reason", "failed_at")
    ).as_json()


def appointment_json(record: AppointmentRecord) -> dict[str, Any]:
    """The API's appointment: the host's last version, and per staff member what Outlook holds."""
    from functions import responses
    from shared.service.change_types import CopyStatus, TeamsMeetingJson

    document = appointment_document(record.appointment) if record.appointment else None
    copies = copies_json(record)
    return responses.Appointment.of(
        appointment_id=record.appointment_id,
        revision=record.revision,
        updated_at=iso(record.updated_at),
        state=record.state,
        appointment=document,
        meeting=TeamsMeetingJson.model_construct(**copies["meeting"]) if copies["meeting"] else None,
        staff=[
            CopyStatus.model_construct(
                **{**copy, "role": CopyRole(copy["role"]), "state": CopyState(copy["state"])}
            )
            for copy in copies["staff"]
        ],
    ).as_json()


def _day_text(value: TaskDay | None) -> str | None:
    if value is None:
        return None
    return value.at.isoformat() if value.at is not None else value.day.isoformat()


def task_json(record: TaskRecord) -> dict[str, Any]:
    """A host task: its last version and where To Do holds it (the host API's task GET, PUT, DELETE)."""
    from functions import responses

    task = record.task
    body = None
    if task is not None:
        body = responses.TaskJson.of(
            staff_id=task.staff_id,
            title=task.title,
            body=task.body,
            body_type=task.body_type,
            due=_day_text(task.due),
            start=_day_text(task.start),
            reminder_at=iso(task.reminder_at),
            completed_at=iso(task.completed_at),
            time_zone=task.time_zone,
            importance=task.importance.value,
            status=task.status.value,
            categories=list(task.categories),
            recurrence=task.recurrence,
            checklist=[
                responses.ChecklistStep.of(id=c.id, title=c.title, checked=c.checked) for c in task.checklist
            ],
        )
    return responses.Task.of(
        **_copied(record, "task_id", "revision", "updated_at", "state", "error"),
        task=body,
        **_copied(record, "staff_id", "graph_task_id", "list_id", "written_revision"),
    ).as_json()


def mail_json(record: MailRecord) -> dict[str, Any]:
    """A message's state (the host API's mail GET and PUT)."""
    from functions import responses

    return responses.Mail.of(
        from_staff_id=record.staff_id,
        **_copied(
            record,
            "message_id",
            "state",
            "recipients",
            "save_to_sent_items",
            "attempts",
            "created_at",
            "updated_at",
            "sent_at",
            "internet_message_id",
            "error",
        ),
    ).as_json()


def _when(value: datetime | date) -> str:
    return iso(value) or "" if isinstance(value, datetime) else value.isoformat()


def _busy_time(entry: BusyEntry) -> responses.BusyTime:
    from functions import responses

    return responses.BusyTime.of(
        start=_when(entry.start), end=_when(entry.end), show_as=entry.show_as.value, all_day=entry.all_day
    )


def staff_busy_json(found: StaffBusy) -> dict[str, Any]:
    """A staff member's busy times: when and how busy, never what."""
    from functions import responses

    assert found.source is not None and found.as_of is not None
    return responses.StaffBusy.of(
        staff_id=found.staff_id,
        source=found.source.value,
        as_of=iso(found.as_of),
        busy=[_busy_time(entry) for entry in found.busy],
    ).as_json()


def availability_json(answer: AvailabilityAnswer) -> dict[str, Any]:
    """Slots (or free periods) and each staff member's source."""
    from functions import responses

    staff = [
        responses.StaffSource.of(
            staff_id=member.staff_id,
            source=member.source.value if member.source is not None else None,
            as_of=iso(member.as_of),
            error=member.error,
        )
        for member in answer.staff
    ]
    if answer.periods is not None:
        periods = [responses.FreePeriod.of(start=iso(p.start), end=iso(p.end)) for p in answer.periods]
        return responses.Availability.of(periods=periods, staff=staff).as_json()
    participants: dict[tuple[tuple[str, ...], ...], list[responses.SlotGroup]] = {}  # one per set of free
    for slot in answer.slots or ():  # staff: consecutive slots mostly share theirs, and models cost
        if slot.free not in participants:
            participants[slot.free] = [responses.SlotGroup.of(staff_ids=list(free)) for free in slot.free]
    slots = [
        responses.Slot.of(start=iso(slot.start), end=iso(slot.end), participants=participants[slot.free])
        for slot in answer.slots or ()
    ]
    return responses.Availability.of(slots=slots, staff=staff).as_json()


def message_json(message: MonitoredMessage) -> dict[str, Any]:
    return _message(message).as_json()


def _message(message: MonitoredMessage) -> responses.Message:
    from functions import responses

    return responses.Message.of(
        monitor_id=message.message_id,
        **_copied(message, "direction", "kind", "status", "staff_id", "key", "attempts", "started_at", "at"),
        detail=dict(message.detail),
    )


def message_page_json(page: MessagePage) -> dict[str, Any]:
    from functions import responses

    value = [_message(m) for m in page.messages]
    return responses.MessagePage.of(value=value, next_cursor=page.next_cursor).as_json()


def user_detail_json(detail: UserDetail) -> dict[str, Any]:
    from functions import responses

    user = detail.user

    def direction(summary: DirectionSummary, error: str | None = None) -> responses.DirectionState:
        last, failed = summary.last, summary.last_failed
        return responses.DirectionState.of(
            last_at=iso(last.at) if last else None,
            last_status=last.status if last else None,
            last_error_at=iso(failed.at) if failed else None,
            last_error=error or (str(failed.detail.get("error") or "") or None if failed else None),
        )

    def subscription(
        subscription_id: str | None, expires_at: datetime | None
    ) -> responses.SubscriptionState | None:
        if subscription_id is None:
            return None
        return responses.SubscriptionState.of(subscription_id=subscription_id, expires_at=iso(expires_at))

    tasks = user.task_sync
    todo_list = (
        responses.TodoListState.of(
            list_id=user.todo_list_id or tasks.list_id,
            name=user.todo_list_name,
            reason=user.todo_list_reason,
            subscription=subscription(tasks.subscription_id, tasks.subscription_expires_at),
        )
        if user.todo_list_id or tasks.list_id or user.todo_list_reason or tasks.subscription_id
        else None
    )
    return responses.UserDetail.of(
        user=_user(user),
        subscription=subscription(user.subscription_id, user.subscription_expires_at),
        todo_list=todo_list,
        delta_link_held=user.delta_link is not None,
        delta_link_since=iso(user.delta_since) if user.delta_link is not None else None,
        push=direction(detail.push),
        pull=direction(detail.pull, user.last_error),
    ).as_json()


def hold_json(state: HoldState) -> dict[str, Any]:
    from functions import responses

    return responses.DeliveryHoldState.of(
        held=state.held, held_at=iso(state.held_at), backlog=state.backlog, from_sequence=state.from_sequence
    ).as_json()


def poison_list_json(listing: PoisonListing) -> dict[str, Any]:
    from functions import responses

    return responses.PoisonList.of(
        value=[poison_json(entry) for entry in listing.entries],
        queues=[
            responses.PoisonQueue.of(**_copied(q, "queue", "messages", "looked_at")) for q in listing.queues
        ],
        complete=listing.complete,
    ).as_json()


def poison_json(entry: PoisonEntry) -> dict[str, Any]:
    from functions import responses

    return responses.PoisonMessage.of(
        poison_id=entry.message_id,
        **_copied(entry, "queue", "kind", "reason", "failed_at", "attempts", "job"),
    ).as_json()
