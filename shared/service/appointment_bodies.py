"""The host's appointment body as pydantic models: they check each member's type and limits, name the
member at fault by its path (`customers[2].email`, `recurrence.overrides[0].start`), and generate the
OpenAPI component `AppointmentInput` (`functions/openapi.py`).

What needs the appointment as a whole (the times in its zone, `end` after `start`, the rule against
`shared/domain/recurrence.py`, exdates and overrides naming occurrences, the stored size) is the
conversion into the domain's `Appointment`, in `appointment_commands.parse_appointment`. A member's own
check runs first here, so its wording stays the API's own (`refuse`, not pydantic's), and the
document states the same limit (the models' `Field` constraints, which the checks meet first). The limits
are the constants of `shared/service/limits.py`. pydantic is imported with this module, which the parser
imports when it is first called, never at the cold start.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    WithJsonSchema,
    field_validator,
)

from shared.domain.timezones import UnknownZone, require_zone
from shared.service.bodies import Body, refuse
from shared.service.limits import (
    APPOINTMENT_ID_RE,
    EARLIEST,
    LATEST,
    MAX_ADDRESS,
    MAX_APPOINTMENT_CATEGORIES,
    MAX_BODY,
    MAX_CATEGORY_NAME,
    MAX_CUSTOMER_NAME,
    MAX_CUSTOMERS,
    MAX_EXCEPTIONS,
    MAX_LOCATION,
    MAX_RRULE,
    MAX_STAFF,
    MAX_STORED,
    MAX_SUBJECT,
    BodyType,
    Sensitivity,
    ShowAs,
)

MAX_EVENT_ID = 512  # Graph's ids are about 150 characters; immutable ones a little longer
EMAIL: re.Pattern[str] = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
OCCURRENCE = "must be an ISO 8601 date or date-time of an occurrence"
RRULE_REQUIRED = "is required (an RFC 5545 RRULE such as FREQ=WEEKLY;BYDAY=MO)"
STAFF_IDS = "must be a non-empty list of staff ids"
NOT_BLANK = r"\S"


class AppointmentPart(Body):
    """An object of the appointment body: its texts are kept as sent (not stripped)."""

    model_config = ConfigDict(str_strip_whitespace=False)


def _checked(check: Callable[[Any], bool], reason: str) -> BeforeValidator:
    """Refuse a value `check` fails with `reason`, before the type and its constraints are checked (so
    the `Field` constraints beside it document the limit, and the wording is the parser's own)."""

    def validate(value: Any) -> Any:
        if not check(value):
            raise refuse(reason)
        return value

    return BeforeValidator(validate)


def _listed(most: int, not_a_list: str, too_many: str) -> BeforeValidator:
    def validate(value: Any) -> Any:
        if not isinstance(value, list):
            raise refuse(not_a_list)
        if len(value) > most:
            raise refuse(too_many)
        return value

    return BeforeValidator(validate)


def _is_text(value: Any) -> bool:
    return isinstance(value, str)


def _is_object(value: Any) -> bool:
    return isinstance(value, dict)


def _not_blank(value: str) -> str:
    if not value.strip():
        raise refuse("must not be empty")
    return value


def _each_once(value: list[str]) -> list[str]:
    if len(set(value)) != len(value):
        raise refuse("lists a staff member twice")
    return value


Subject = Annotated[
    StrictStr,
    Field(max_length=MAX_SUBJECT, json_schema_extra={"minLength": 1, "pattern": NOT_BLANK}),
    AfterValidator(_not_blank),
]
CustomerName = Annotated[
    StrictStr,
    Field(max_length=MAX_CUSTOMER_NAME, json_schema_extra={"minLength": 1, "pattern": NOT_BLANK}),
    AfterValidator(_not_blank),
]
Address = Annotated[StrictStr, Field(max_length=MAX_ADDRESS, json_schema_extra={"format": "email"})]
Location = Annotated[StrictStr, Field(max_length=MAX_LOCATION)]
Text = Annotated[StrictStr, Field(max_length=MAX_BODY)]
OverrideSubject = Annotated[StrictStr, Field(max_length=MAX_SUBJECT)]
VIDEO_PROVIDERS = ("teams",)


def _video(value: Any) -> Any:
    """`true`, `false` or `{"provider": "teams"}` (the one provider): a video appointment gets one Teams
    meeting."""
    if isinstance(value, bool):
        return value
    if not isinstance(value, dict):
        raise refuse('must be true, false or an object like {"provider": "teams"}')
    unknown = sorted(set(value) - {"provider"})
    if unknown:
        raise refuse("is not a member of video", unknown[0])
    provider = value.get("provider", "teams")
    if provider not in VIDEO_PROVIDERS:
        raise refuse(f"must be one of {', '.join(VIDEO_PROVIDERS)}", "provider")
    return True


Video = Annotated[
    StrictBool,
    BeforeValidator(_video),
    WithJsonSchema(
        {
            "description": "A video appointment: one Teams meeting, its join details in every copy.",
            "oneOf": [
                {"type": "boolean"},
                {
                    "type": "object",
                    "properties": {"provider": {"type": "string", "enum": list(VIDEO_PROVIDERS)}},
                    "additionalProperties": False,
                },
            ],
        }
    ),
]
When = Annotated[str, _checked(_is_text, "must be an ISO 8601 string")]
Occurrence = Annotated[str, _checked(_is_text, OCCURRENCE)]
StaffId = Annotated[
    str,
    Field(max_length=128, pattern=APPOINTMENT_ID_RE.pattern),
    _checked(
        lambda v: isinstance(v, str) and APPOINTMENT_ID_RE.match(v) is not None, "is not a valid staff id"
    ),
]
StaffIds = Annotated[
    list[StaffId],
    Field(min_length=1, max_length=MAX_STAFF, json_schema_extra={"uniqueItems": True}),
    _checked(lambda v: isinstance(v, list) and bool(v), STAFF_IDS),
    _listed(MAX_STAFF, STAFF_IDS, f"must have at most {MAX_STAFF} staff members"),
    AfterValidator(_each_once),
]
Category = Annotated[
    str,
    Field(min_length=1, max_length=MAX_CATEGORY_NAME, pattern=NOT_BLANK),
    _checked(
        lambda v: isinstance(v, str) and bool(v.strip()) and len(v) <= MAX_CATEGORY_NAME,
        f"must be a non-empty name of at most {MAX_CATEGORY_NAME} characters",
    ),
]


class CustomerInput(AppointmentPart):
    unknown_reason = "is not a field of a customer"
    name: CustomerName
    email: Address | None = None

    @field_validator("email")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if not value:  # blank is the same as absent
            return None
        if not EMAIL.match(value):
            raise refuse("is not an email address")
        return value


class OverrideInput(AppointmentPart):
    """One occurrence moved or changed; `recurrence_id` names it (its date, or its start as sent)."""

    unknown_reason = "is not a field of an override"
    missing_reasons = {"recurrence_id": OCCURRENCE}
    recurrence_id: Occurrence
    start: When
    end: When
    subject: OverrideSubject = ""
    location: Location = ""
    body: Text = ""


class RecurrenceInput(AppointmentPart):
    model_config = ConfigDict(
        json_schema_extra={"description": f"At most {MAX_EXCEPTIONS} exdates and overrides together."}
    )
    unknown_reason = "is not a field of a recurrence"
    missing_reasons = {"rrule": RRULE_REQUIRED}
    rrule: Annotated[
        str,
        Field(
            min_length=1,
            max_length=MAX_RRULE,
            pattern=NOT_BLANK,
            description="RFC 5545 RRULE, e.g. FREQ=WEEKLY;BYDAY=MO,WE",
        ),
        _checked(lambda v: isinstance(v, str) and bool(v.strip()), RRULE_REQUIRED),
    ]
    exdates: Annotated[
        list[Occurrence],
        Field(
            max_length=MAX_EXCEPTIONS,
            description="The original local dates of cancelled occurrences. Graph cannot restore a "
            "cancelled occurrence: a later PUT that leaves out a date given before leaves the series as it "
            "is and writes that occurrence as an event of its own beside it, linked to the appointment "
            "(updated by later PUTs, deleted with the appointment or when the date is cancelled again); in "
            "meeting mode its attendees are invited to that occurrence alone and keep their responses to "
            "the series.",
        ),
        _listed(MAX_EXCEPTIONS, "must be a list", f"must have at most {MAX_EXCEPTIONS} dates"),
    ] = []
    overrides: Annotated[
        list[Annotated[OverrideInput, _checked(_is_object, "must be an object")]],
        Field(max_length=MAX_EXCEPTIONS),
        _listed(MAX_EXCEPTIONS, "must be a list", f"must have at most {MAX_EXCEPTIONS} overrides"),
    ] = []


class OutlookEventInput(AppointmentPart):
    """An event made in Outlook that the appointment adopts: afterwards it is the host's (its Outlook
    changes report as this appointment's, the host's PUTs update it)."""

    model_config = ConfigDict(
        json_schema_extra={
            "description": "Adopt an event made in Outlook as this appointment's event in the staff member's "
            "calendar (a single event or a series master the staff member organises, not yet another "
            "appointment's). Refused with a 4xx naming outlook.event_id when the calendar holds no such "
            "event, it is another appointment's or another appointment's PUT is adopting it (409), or it "
            "is a meeting someone else organises (409: only the organiser's event can be adopted)."
        }
    )
    unknown_reason = "is not a field of outlook"
    missing_reasons = {"staff_id": "is required (the staff member whose calendar holds the event)"}
    staff_id: StaffId
    event_id: Annotated[
        str,
        Field(min_length=1, max_length=MAX_EVENT_ID, description="The event's Graph id (immutable id)."),
        _checked(
            lambda v: isinstance(v, str) and 0 < len(v) <= MAX_EVENT_ID and v.strip() == v,
            f"must be a Graph event id (at most {MAX_EVENT_ID} characters)",
        ),
    ]


class AppointmentInput(AppointmentPart):
    model_config = ConfigDict(
        json_schema_extra={
            "description": "The appointment's texts together, as stored (JSON, characters beyond ASCII as "
            f"escapes), are at most {MAX_STORED} characters; past that the largest text is named."
        }
    )
    unknown_reason = "is not a field of an appointment"
    missing_reasons = {"staff_ids": STAFF_IDS}
    subject: Subject
    body: Text = ""
    body_type: BodyType = "text"
    location: Location = ""
    start: Annotated[
        When,
        Field(
            description="ISO 8601: a wall-clock time in time_zone, a time with an offset, or a date when "
            f"all_day; on a date from {EARLIEST} to {LATEST}."
        ),
    ]
    end: Annotated[When, Field(description="As start; after it (all-day: exclusive end date).")]
    time_zone: Annotated[
        str | None,
        Field(description="IANA name, e.g. Europe/Amsterdam."),
        _checked(_is_text, "must be an IANA time zone name such as Europe/Amsterdam"),
    ] = None
    all_day: StrictBool = False
    staff_ids: StaffIds
    customers: Annotated[
        list[Annotated[CustomerInput, _checked(_is_object, "must be an object with name and email")]],
        Field(max_length=MAX_CUSTOMERS),
        _listed(MAX_CUSTOMERS, "must be a list", f"must have at most {MAX_CUSTOMERS} entries"),
    ] = []
    recurrence: (
        Annotated[
            RecurrenceInput,
            _checked(_is_object, "must be an object with rrule, exdates and overrides"),
        ]
        | None
    ) = None
    show_as: ShowAs = "busy"
    sensitivity: Sensitivity = "normal"
    categories: Annotated[
        list[Category],
        Field(max_length=MAX_APPOINTMENT_CATEGORIES, description="Outlook categories."),
        _listed(
            MAX_APPOINTMENT_CATEGORIES,
            "must be a list of category names",
            f"must have at most {MAX_APPOINTMENT_CATEGORIES} categories",
        ),
    ] = []
    video: Video = False
    outlook: (
        Annotated[OutlookEventInput, _checked(_is_object, "must be an object with staff_id and event_id")]
        | None
    ) = None

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                require_zone(value)
            except UnknownZone as error:
                raise refuse(str(error)) from None
        return value
