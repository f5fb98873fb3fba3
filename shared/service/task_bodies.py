"""The host's task body (`PUT /tenants/{tid}/tasks/{task_id}`) as pydantic models, which check each
member and generate the OpenAPI component `TaskInput`; `parse_task` converts it into the domain's
`HostTask` (the times in their zone, the rule against what To Do can hold), naming the member at fault.

A due or start is a date (a day in the staff member's zone: `time_zone`, else their mailbox's) or a
date-time (a wall clock in `time_zone`, or with an offset), whose day To Do keeps. A reminder and a
completion time are instants (with an offset, or a wall clock in `time_zone`). The recurrence is an RRULE
that To Do can hold: daily, weekly, monthly or yearly from the due day, without an end (To Do repeats a
task for ever; COUNT and UNTIL are refused) and needs a due date.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BeforeValidator, ConfigDict, Field, StrictBool, StrictStr, field_validator

from shared.domain.recurrence import RecurrenceError, to_graph
from shared.domain.tasks import ChecklistItem, HostTask, TaskDay, TaskImportance, TaskStatus
from shared.domain.timezones import NoWindowsZone, UnknownZone, require_zone
from shared.service.bodies import Body, parse, refuse
from shared.service.errors import InvalidInput
from shared.service.limits import (
    APPOINTMENT_ID_RE,
    EARLIEST,
    LATEST,
    MAX_CATEGORY_NAME,
    MAX_CHECKLIST,
    MAX_CHECKLIST_TITLE,
    MAX_RRULE,
    MAX_TASK_BODY,
    MAX_TASK_CATEGORIES,
    MAX_TASK_TITLE,
    BodyType,
)

NOT_BLANK = r"\S"
DAY_OR_TIME = (
    "must be an ISO 8601 date (2026-03-10) or date-time (2026-03-10T17:00, with time_zone or an offset)"
)
INSTANT = "must be an ISO 8601 date-time with an offset, or a wall-clock time with time_zone"
STATUSES = tuple(s.value for s in TaskStatus)
IMPORTANCES = tuple(i.value for i in TaskImportance)


def _not_blank(value: Any) -> Any:
    if not isinstance(value, str) or not value.strip():
        raise refuse(f"must be a non-empty text of at most {MAX_TASK_TITLE} characters")
    if len(value) > MAX_TASK_TITLE:
        raise refuse(f"must be at most {MAX_TASK_TITLE} characters (To Do's limit), not {len(value)}")
    return value


def _text_within(limit: int, what: str) -> BeforeValidator:
    def check(value: Any) -> Any:
        if not isinstance(value, str):
            raise refuse("must be a text")
        if len(value) > limit:
            raise refuse(f"must be at most {limit} characters ({what}), not {len(value)}")
        return value

    return BeforeValidator(check)


def _one_of(values: tuple[str, ...]) -> BeforeValidator:
    def check(value: Any) -> Any:
        if value not in values:
            raise refuse(f"must be one of {', '.join(values)}")
        return value

    return BeforeValidator(check)


def _a_text(reason: str) -> BeforeValidator:
    def check(value: Any) -> Any:
        if not isinstance(value, str) or not value.strip():
            raise refuse(reason)
        return value

    return BeforeValidator(check)


Title = Annotated[
    str,
    Field(min_length=1, max_length=MAX_TASK_TITLE, pattern=NOT_BLANK),
    BeforeValidator(_not_blank),
]
Note = Annotated[StrictStr, Field(max_length=MAX_TASK_BODY), _text_within(MAX_TASK_BODY, "the task's note")]
DayOrTime = Annotated[str, Field(description=DAY_OR_TIME), _a_text(DAY_OR_TIME)]
Instant = Annotated[str, Field(description=INSTANT), _a_text(INSTANT)]
Category = Annotated[
    str,
    Field(min_length=1, max_length=MAX_CATEGORY_NAME, pattern=NOT_BLANK),
    _text_within(MAX_CATEGORY_NAME, "a category name"),
]


class ChecklistInput(Body):
    model_config = ConfigDict(str_strip_whitespace=False)
    unknown_reason = "is not a field of a checklist item"
    id: Annotated[
        str,
        Field(max_length=128, pattern=APPOINTMENT_ID_RE.pattern, description="The host's id of the step."),
        _a_text("must be the host's id of the step"),
    ]
    title: Annotated[
        str,
        Field(min_length=1, max_length=MAX_CHECKLIST_TITLE, pattern=NOT_BLANK),
        _text_within(MAX_CHECKLIST_TITLE, "a step's title"),
        _a_text("must be a non-empty text"),
    ]
    checked: StrictBool = False


class TaskInput(Body):
    model_config = ConfigDict(str_strip_whitespace=False)
    unknown_reason = "is not a field of a task"
    missing_reasons = {
        "staff_id": "name the staff member whose To Do list holds the task",
        "title": "is required",
    }
    staff_id: Annotated[
        str,
        Field(max_length=128, pattern=APPOINTMENT_ID_RE.pattern, description="Whose To Do list holds it."),
        _a_text("must be a staff id"),
    ]
    title: Title
    body: Note = ""
    body_type: BodyType = "text"
    due: DayOrTime | None = None
    start: DayOrTime | None = None
    reminder_at: Instant | None = None
    completed_at: Annotated[
        Instant | None, Field(description=INSTANT + ". Only with status completed; default: when written.")
    ] = None
    time_zone: Annotated[
        str | None,
        Field(
            description="IANA zone: the staff member's, in which a due or start date is a day, and of a "
            "wall-clock time. Default: the zone of their mailbox (as Outlook keeps it), else UTC."
        ),
        _a_text("must be an IANA time zone name such as Pacific/Kiritimati"),
    ] = None
    importance: Annotated[Literal["low", "normal", "high"], _one_of(IMPORTANCES)] = "normal"
    status: Annotated[
        Literal["not_started", "in_progress", "completed", "waiting_on_others", "deferred"], _one_of(STATUSES)
    ] = "not_started"
    categories: Annotated[list[Category], Field(max_length=MAX_TASK_CATEGORIES)] = []
    recurrence: Annotated[
        str | None,
        Field(
            max_length=MAX_RRULE,
            description="An RFC 5545 RRULE To Do can hold (FREQ=DAILY, WEEKLY, MONTHLY or YEARLY, no COUNT "
            "or UNTIL); it repeats from the due day, so due is required.",
        ),
        _a_text("must be an RRULE such as FREQ=WEEKLY;BYDAY=MO"),
    ] = None
    checklist: Annotated[list[ChecklistInput], Field(max_length=MAX_CHECKLIST)] = []

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                require_zone(value)
            except UnknownZone as error:
                raise refuse(str(error)) from None
        return value

    @field_validator("checklist")
    @classmethod
    def _ids_once(cls, value: list[ChecklistInput]) -> list[ChecklistInput]:
        ids = [item.id for item in value]
        if len(set(ids)) != len(ids):
            raise refuse("names a step id twice")
        return value


def parse_task(task_id: str, body: Any) -> HostTask:
    if not APPOINTMENT_ID_RE.match(task_id):
        raise InvalidInput("task_id", "must be 1-128 letters, digits or ._~@+=-")
    given = parse(TaskInput, body)
    zone = given.time_zone
    due = _day("due", given.due, zone)
    start = _day("start", given.start, zone)
    reminder = _instant("reminder_at", given.reminder_at, zone)
    completed = _instant("completed_at", given.completed_at, zone)
    status = TaskStatus(given.status)
    if completed is not None and status is not TaskStatus.COMPLETED:
        raise InvalidInput("completed_at", "is only for a completed task (status completed)")
    if given.recurrence is not None:
        _check_recurrence(given.recurrence, due, zone)
    return HostTask(
        task_id=task_id,
        staff_id=given.staff_id,
        title=given.title,
        body=given.body,
        body_type=given.body_type,
        due=due,
        start=start,
        reminder_at=reminder,
        importance=TaskImportance(given.importance),
        status=status,
        completed_at=completed,
        categories=tuple(given.categories),
        recurrence=given.recurrence,
        checklist=tuple(ChecklistItem(c.id, c.title, c.checked) for c in given.checklist),
        time_zone=zone,
    )


def _in_range(field: str, day: date) -> None:
    if not EARLIEST <= day <= LATEST:
        raise InvalidInput(field, f"must be a date from {EARLIEST} to {LATEST}")


def _day(field: str, raw: str | None, zone: str | None) -> TaskDay | None:
    if raw is None:
        return None
    text = raw.strip()
    if len(text) == 10:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise InvalidInput(field, DAY_OR_TIME) from None
        _in_range(field, day)
        return TaskDay(day)
    at = _instant(field, text, zone)
    assert at is not None
    local_zone = zone or "UTC"
    local = at.astimezone(ZoneInfo(local_zone)) if zone else at
    _in_range(field, local.date())
    return TaskDay(local.date(), local, local_zone if zone else None)


def _instant(field: str, raw: str | None, zone: str | None) -> datetime | None:
    if raw is None:
        return None
    text = raw.strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        raise InvalidInput(field, INSTANT) from None
    if parsed.tzinfo is None:
        if zone is None:
            raise InvalidInput(field, "has no offset: give one (…+01:00 or …Z), or time_zone")
        parsed = parsed.replace(tzinfo=ZoneInfo(zone))
    _in_range(field, parsed.astimezone(UTC).date())
    return parsed


def _check_recurrence(rrule: str, due: TaskDay | None, zone: str | None) -> None:
    if due is None:
        raise InvalidInput(
            "due", "is required with a recurrence: To Do repeats a task from its due day", status=422
        )
    parts = {p.split("=", 1)[0].strip().upper() for p in rrule.split(";") if p.strip()}
    for part in ("COUNT", "UNTIL"):
        if part in parts:
            raise InvalidInput(
                "recurrence", f"{part}: To Do repeats a task without an end; leave {part} out", status=422
            )
    try:
        to_graph(rrule, due.day, zone or "UTC")
    except RecurrenceError as error:
        raise InvalidInput("recurrence", f"{error.part}: {error.reason}", status=422) from None
    except (NoWindowsZone, UnknownZone) as error:
        raise InvalidInput("recurrence", str(error), status=422) from None
