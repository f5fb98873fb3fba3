"""The host's appointment JSON parsed into `Appointment`; every rejection names the field and the reason.

Times: with `all_day`, `start`/`end` are dates (`2027-03-01`, end exclusive). Otherwise ISO 8601
date-times, either wall-clock times in `time_zone` (an IANA name) or with a UTC offset (converted into
`time_zone`, or kept in UTC when no zone is given). A time with neither an offset nor a zone is refused:
the connector never guesses a zone. The recurrence must be one Outlook can hold exactly
(`shared/domain/recurrence.py` says which part of an RRULE it cannot), and every exdate and override must
name an occurrence of the rule.

As for every request body (`shared/service/commands.py`), a JSON `null` is the same as leaving the field
out, and a rejection names the field by its path (`customers[2].email`, `recurrence.overrides[0].start`).
The limits are the constants below; `functions/openapi.py` publishes them.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from typing import Any, Final

from shared.domain import recurrence as rules
from shared.domain.appointments import Appointment, Customer, Override, Recurrence
from shared.domain.timezones import NoWindowsZone, UnknownZone, require_zone
from shared.service.errors import InvalidInput

APPOINTMENT_ID_RE: Final = re.compile(r"^[A-Za-z0-9._~@+=-]{1,128}$")  # safe as a key and in a transactionId
APPOINTMENT_ID_CHARS: Final = "must be 1-128 characters of letters, digits and . _ ~ @ + = -"
MAX_SUBJECT: Final = 255
MAX_BODY: Final = 64_000
MAX_LOCATION: Final = 255
MAX_STAFF: Final = 20
MAX_CUSTOMERS: Final = 100
MAX_CUSTOMER_NAME: Final = 256
MAX_ADDRESS: Final = 320
MAX_CATEGORIES: Final = 25
MAX_CATEGORY_NAME: Final = 255
MAX_RRULE: Final = 1_000
MAX_EXCEPTIONS: Final = 200
# Dates an appointment may fall on: Outlook's calendars (FILETIME, from 1601) hold these, and every zone's
# offset applied to them stays a valid Python date.
EARLIEST: Final = date(1900, 1, 1)
LATEST: Final = date(2999, 12, 31)
# The appointment is kept as ASCII JSON in its row (Table Storage: 1 MiB of UTF-16 per entity, with the
# per-staff copies beside it); text beyond ASCII takes up to 12 characters there (two \uXXXX escapes).
MAX_STORED: Final = 400_000
SHOW_AS: Final = ("free", "tentative", "busy", "oof", "workingElsewhere")
SENSITIVITY: Final = ("normal", "personal", "private", "confidential")
BODY_TYPES: Final = ("text", "html")
FIELDS: Final = frozenset(
    {
        "subject",
        "body",
        "body_type",
        "location",
        "start",
        "end",
        "time_zone",
        "all_day",
        "staff_ids",
        "customers",
        "recurrence",
        "show_as",
        "sensitivity",
        "categories",
        "video",
    }
)


def parse_appointment_id(value: str) -> str:
    if not APPOINTMENT_ID_RE.match(value or ""):
        raise InvalidInput("appointment_id", APPOINTMENT_ID_CHARS)
    return value


def parse_appointment(appointment_id: str, body: dict[str, Any]) -> Appointment:
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise InvalidInput(unknown[0], "is not a field of an appointment")
    all_day = _bool(body, "all_day")
    zone = _zone(body)
    start = _when(body, "start", all_day, zone)
    end = _when(body, "end", all_day, zone)
    if not _after(end, start):
        raise InvalidInput("end", "must be after start")
    time_zone = zone or "UTC"
    appointment = Appointment(
        appointment_id=parse_appointment_id(appointment_id),
        subject=_text(body, "subject", MAX_SUBJECT, required=True),
        start=start,
        end=end,
        time_zone=time_zone,
        all_day=all_day,
        staff_ids=_staff_ids(body),
        body=_text(body, "body", MAX_BODY),
        body_type=_choice(body, "body_type", BODY_TYPES, "text"),
        location=_text(body, "location", MAX_LOCATION),
        customers=_customers(body),
        show_as=_choice(body, "show_as", SHOW_AS, "busy"),
        sensitivity=_choice(body, "sensitivity", SENSITIVITY, "normal"),
        categories=_categories(body),
        video=_bool(body, "video"),
    )
    raw = body.get("recurrence")
    if raw is not None:
        appointment = Appointment(**{**_fields(appointment), "recurrence": _recurrence(raw, appointment)})
    _check_stored_size(appointment)
    return appointment


def _check_stored_size(appointment: Appointment) -> None:
    """Refuse an appointment too large for its row, naming the largest text in it."""
    if len(json.dumps(appointment_document(appointment))) <= MAX_STORED:
        return
    texts = [("body", appointment.body), ("subject", appointment.subject), ("location", appointment.location)]
    if appointment.recurrence is not None:
        for index, override in enumerate(appointment.recurrence.overrides):
            prefix = f"recurrence.overrides[{index}]."
            texts += [
                (prefix + name, getattr(override, name) or "") for name in ("body", "subject", "location")
            ]
    field = max(texts, key=lambda text: len(json.dumps(text[1])))[0]
    raise InvalidInput(
        field, f"the appointment's texts are too long together (at most {MAX_STORED} characters as JSON)"
    )


def _after(end: datetime | date, start: datetime | date) -> bool:
    """Both dates (all-day) or both aware datetimes, as the parser makes them."""
    if isinstance(end, datetime) and isinstance(start, datetime):
        return end > start
    if isinstance(end, datetime) or isinstance(start, datetime):
        return False
    return end > start


def _fields(appointment: Appointment) -> dict[str, Any]:
    return {name: getattr(appointment, name) for name in Appointment.__slots__}


def _bool(body: dict[str, Any], name: str) -> bool:
    value = body.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidInput(name, "must be true or false")
    return value


def _text(body: dict[str, Any], name: str, limit: int, *, required: bool = False, prefix: str = "") -> str:
    field = f"{prefix}{name}"
    value = body.get(name)
    if value is None:
        if required:
            raise InvalidInput(field, "is required")
        return ""
    if not isinstance(value, str):
        raise InvalidInput(field, "must be a string")
    if required and not value.strip():
        raise InvalidInput(field, "must not be empty")
    if len(value) > limit:
        raise InvalidInput(field, f"must be at most {limit} characters")
    return value


def _choice(body: dict[str, Any], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = body.get(name)
    if value is None:
        return default
    if value not in allowed:
        raise InvalidInput(name, f"must be one of: {', '.join(allowed)}")
    return str(value)


def _zone(body: dict[str, Any]) -> str | None:
    value = body.get("time_zone")
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput("time_zone", "must be an IANA time zone name such as Europe/Amsterdam")
    try:
        require_zone(value)
    except UnknownZone as error:
        raise InvalidInput("time_zone", str(error)) from None
    return value


def _when(
    body: dict[str, Any], name: str, all_day: bool, zone: str | None, prefix: str = ""
) -> datetime | date:
    field = f"{prefix}{name}"
    value = body.get(name)
    if value is None:
        raise InvalidInput(field, "is required")
    if not isinstance(value, str):
        raise InvalidInput(field, "must be an ISO 8601 string")
    return parse_when(value, field, all_day, zone)


def parse_when(value: str, field: str, all_day: bool, zone: str | None) -> datetime | date:
    if all_day:
        try:
            return _in_range(date.fromisoformat(value), field)
        except ValueError:
            raise InvalidInput(field, "must be a date (YYYY-MM-DD) for an all-day appointment") from None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(field, "must be an ISO 8601 date-time") from None
    _in_range(parsed.date(), field)
    if len(value) <= 10:
        raise InvalidInput(field, "must be a date-time (a date alone is for all-day appointments)")
    if parsed.tzinfo is None:
        if zone is None:
            raise InvalidInput(field, "has no UTC offset and the appointment has no time_zone")
        local = parsed.replace(tzinfo=require_zone(zone))
        if local.astimezone(UTC).astimezone(local.tzinfo).replace(tzinfo=None) != parsed:
            raise InvalidInput(field, f"does not exist in {zone} (skipped by a daylight-saving change)")
        return local
    return parsed.astimezone(require_zone(zone) if zone else UTC)


def _in_range(day: date, field: str) -> date:
    if not EARLIEST <= day <= LATEST:
        raise InvalidInput(field, f"must fall between {EARLIEST} and {LATEST}")
    return day


def _staff_ids(body: dict[str, Any]) -> tuple[str, ...]:
    value = body.get("staff_ids")
    if not isinstance(value, list) or not value:
        raise InvalidInput("staff_ids", "must be a non-empty list of staff ids")
    if len(value) > MAX_STAFF:
        raise InvalidInput("staff_ids", f"must have at most {MAX_STAFF} staff members")
    for index, staff_id in enumerate(value):
        if not isinstance(staff_id, str) or not APPOINTMENT_ID_RE.match(staff_id):
            raise InvalidInput(f"staff_ids[{index}]", "is not a valid staff id")
    if len(set(value)) != len(value):
        raise InvalidInput("staff_ids", "lists a staff member twice")
    return tuple(value)


def _list(body: dict[str, Any], name: str) -> Any:
    """A list member, or [] when it is absent or null."""
    value = body.get(name)
    return [] if value is None else value


def _customers(body: dict[str, Any]) -> tuple[Customer, ...]:
    value = _list(body, "customers")
    if not isinstance(value, list):
        raise InvalidInput("customers", "must be a list")
    if len(value) > MAX_CUSTOMERS:
        raise InvalidInput("customers", f"must have at most {MAX_CUSTOMERS} entries")
    found: list[Customer] = []
    for index, raw in enumerate(value):
        prefix = f"customers[{index}]."
        if not isinstance(raw, dict):
            raise InvalidInput(f"customers[{index}]", "must be an object with name and email")
        unknown = sorted(set(raw) - {"name", "email"})
        if unknown:
            raise InvalidInput(f"{prefix}{unknown[0]}", "is not a field of a customer")
        name = _text(raw, "name", MAX_CUSTOMER_NAME, required=True, prefix=prefix)
        email = _text(raw, "email", MAX_ADDRESS, prefix=prefix) or None
        if email is not None and not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", email):
            raise InvalidInput(f"{prefix}email", "is not an email address")
        found.append(Customer(name, email))
    return tuple(found)


def _categories(body: dict[str, Any]) -> tuple[str, ...]:
    value = _list(body, "categories")
    if not isinstance(value, list):
        raise InvalidInput("categories", "must be a list of category names")
    if len(value) > MAX_CATEGORIES:
        raise InvalidInput("categories", f"must have at most {MAX_CATEGORIES} categories")
    for index, name in enumerate(value):
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_CATEGORY_NAME:
            raise InvalidInput(
                f"categories[{index}]", f"must be a non-empty name of at most {MAX_CATEGORY_NAME} characters"
            )
    return tuple(value)


def _recurrence(raw: Any, appointment: Appointment) -> Recurrence:
    if not isinstance(raw, dict):
        raise InvalidInput("recurrence", "must be an object with rrule, exdates and overrides")
    unknown = sorted(set(raw) - {"rrule", "exdates", "overrides"})
    if unknown:
        raise InvalidInput(f"recurrence.{unknown[0]}", "is not a field of a recurrence")
    rrule = raw.get("rrule")
    if not isinstance(rrule, str) or not rrule.strip():
        raise InvalidInput("recurrence.rrule", "is required (an RFC 5545 RRULE such as FREQ=WEEKLY;BYDAY=MO)")
    if len(rrule) > MAX_RRULE:
        raise InvalidInput("recurrence.rrule", f"must be at most {MAX_RRULE} characters")
    zone = appointment.time_zone
    try:
        rules.to_graph(rrule, appointment.start, zone, appointment.end)
    except rules.RecurrenceError as error:
        raise InvalidInput("recurrence.rrule", f"{error.part}: {error.reason}", status=422) from None
    except NoWindowsZone as error:  # Outlook would expand the series at other instants than the host
        raise InvalidInput("time_zone", error.reason, status=422) from None
    exdates = _exdates(_list(raw, "exdates"), rrule, appointment)
    overrides = _overrides(_list(raw, "overrides"), rrule, appointment)
    clash = set(exdates) & {o.original_date for o in overrides}
    if clash:
        raise InvalidInput("recurrence.overrides", f"{min(clash)} is both cancelled (exdates) and overridden")
    if len(exdates) + len(overrides) > MAX_EXCEPTIONS:
        raise InvalidInput("recurrence", f"at most {MAX_EXCEPTIONS} exdates and overrides together")
    return Recurrence(rrule.strip(), exdates, overrides)


def _occurrence(value: Any, field: str, rrule: str, appointment: Appointment) -> date:
    if not isinstance(value, str):
        raise InvalidInput(field, "must be an ISO 8601 date or date-time of an occurrence")
    zone = appointment.time_zone
    when = parse_when(value, field, appointment.all_day or len(value) == 10, zone)
    day = rules.occurrence_date(when, zone)
    if not rules.is_occurrence(rrule, appointment.start, zone, day):
        raise InvalidInput(field, f"{day.isoformat()} is not an occurrence of the rule", status=422)
    return day


def _exdates(value: Any, rrule: str, appointment: Appointment) -> tuple[date, ...]:
    if not isinstance(value, list):
        raise InvalidInput("recurrence.exdates", "must be a list")
    if len(value) > MAX_EXCEPTIONS:
        raise InvalidInput("recurrence.exdates", f"must have at most {MAX_EXCEPTIONS} dates")
    days = [_occurrence(v, f"recurrence.exdates[{i}]", rrule, appointment) for i, v in enumerate(value)]
    return tuple(sorted(set(days)))


def _overrides(value: Any, rrule: str, appointment: Appointment) -> tuple[Override, ...]:
    if not isinstance(value, list):
        raise InvalidInput("recurrence.overrides", "must be a list")
    if len(value) > MAX_EXCEPTIONS:
        raise InvalidInput("recurrence.overrides", f"must have at most {MAX_EXCEPTIONS} overrides")
    found: dict[date, Override] = {}
    for index, raw in enumerate(value):
        prefix = f"recurrence.overrides[{index}]."
        if not isinstance(raw, dict):
            raise InvalidInput(f"recurrence.overrides[{index}]", "must be an object")
        unknown = sorted(set(raw) - {"recurrence_id", "start", "end", "subject", "location", "body"})
        if unknown:
            raise InvalidInput(f"{prefix}{unknown[0]}", "is not a field of an override")
        day = _occurrence(raw.get("recurrence_id"), f"{prefix}recurrence_id", rrule, appointment)
        if day in found:
            raise InvalidInput(f"{prefix}recurrence_id", f"{day.isoformat()} is overridden twice")
        zone = appointment.time_zone
        start = _when(raw, "start", appointment.all_day, zone, prefix)
        end = _when(raw, "end", appointment.all_day, zone, prefix)
        if not _after(end, start):
            raise InvalidInput(f"{prefix}end", "must be after start")
        found[day] = Override(
            original_date=day,
            start=start,
            end=end,
            subject=_text(raw, "subject", MAX_SUBJECT, prefix=prefix) or None,
            location=_text(raw, "location", MAX_LOCATION, prefix=prefix) or None,
            body=_text(raw, "body", MAX_BODY, prefix=prefix) or None,
        )
    return tuple(found[d] for d in sorted(found))


def appointment_document(appointment: Appointment) -> dict[str, Any]:
    """The appointment in the API's own shape (what a PUT takes and a GET answers): `parse_appointment`
    of it gives the same appointment back."""
    document: dict[str, Any] = {
        "subject": appointment.subject,
        "body": appointment.body,
        "body_type": appointment.body_type,
        "location": appointment.location,
        "start": appointment.start.isoformat(),
        "end": appointment.end.isoformat(),
        "time_zone": appointment.time_zone,
        "all_day": appointment.all_day,
        "staff_ids": list(appointment.staff_ids),
        "customers": [{"name": c.name, "email": c.email} for c in appointment.customers],
        "show_as": appointment.show_as,
        "sensitivity": appointment.sensitivity,
        "categories": list(appointment.categories),
        "video": appointment.video,
    }
    for customer in document["customers"]:
        if customer["email"] is None:
            del customer["email"]
    recurrence = appointment.recurrence
    if recurrence is not None:
        document["recurrence"] = {
            "rrule": recurrence.rrule,
            "exdates": [day.isoformat() for day in recurrence.exdates],
            "overrides": [_override_document(o) for o in recurrence.overrides],
        }
    return document


def _override_document(override: Override) -> dict[str, Any]:
    document: dict[str, Any] = {
        "recurrence_id": override.original_date.isoformat(),
        "start": override.start.isoformat(),
        "end": override.end.isoformat(),
    }
    for name in ("subject", "location", "body"):
        value = getattr(override, name)
        if value is not None:
            document[name] = value
    return document
