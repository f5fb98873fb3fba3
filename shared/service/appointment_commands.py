"""The host's appointment JSON parsed into `Appointment`; every rejection names the field and the reason.

Times: with `all_day`, `start`/`end` are dates (`2027-03-01`, end exclusive). Otherwise ISO 8601
date-times, either wall-clock times in `time_zone` (an IANA name) or with a UTC offset (converted into
`time_zone`, or kept in UTC when no zone is given). A time with neither an offset nor a zone is refused:
the connector never guesses a zone. The recurrence must be one Outlook can hold exactly
(`shared/domain/recurrence.py` says which part of an RRULE it cannot), and every exdate and override must
name an occurrence of the rule.

The body is first validated by its pydantic model (`shared/service/appointment_bodies.py`: each member's
type and limits, which also generate the OpenAPI component `AppointmentInput`), then converted here. As
for every request body (`shared/service/bodies.py`), a JSON `null` is the same as leaving the field out,
and a rejection names the field by its path (`customers[2].email`, `recurrence.overrides[0].start`). The
limits are the constants of `shared/service/limits.py`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from shared.domain import recurrence as rules
from shared.domain.appointments import Appointment, Customer, Override, Recurrence
from shared.domain.timezones import NoWindowsZone, require_zone
from shared.service.appointment_takeover import Adoption
from shared.service.errors import InvalidInput
from shared.service.limits import (
    APPOINTMENT_ID_CHARS,
    APPOINTMENT_ID_RE,
    EARLIEST,
    LATEST,
    MAX_EXCEPTIONS,
    MAX_STORED,
)

if TYPE_CHECKING:
    from shared.service.appointment_bodies import AppointmentInput, OverrideInput, RecurrenceInput


def parse_appointment_id(value: str) -> str:
    if not APPOINTMENT_ID_RE.match(value or ""):
        raise InvalidInput("appointment_id", APPOINTMENT_ID_CHARS)
    return value


def parse_appointment(appointment_id: str, body: Any) -> Appointment:
    """The body validated by its model (`appointment_bodies.AppointmentInput`: each member's type and
    limits), then converted: the times in the appointment's zone, `end` after `start`, the recurrence
    against the rule, and the stored size."""
    return parse_appointment_put(appointment_id, body)[0]


def parse_appointment_put(appointment_id: str, body: Any) -> tuple[Appointment, Adoption | None]:
    """A PUT's body: the appointment, and the Outlook event it adopts when `outlook` names one."""
    from shared.service.appointment_bodies import AppointmentInput  # pydantic: not at the cold start
    from shared.service.bodies import parse

    given = parse(AppointmentInput, body)
    adoption = Adoption(given.outlook.staff_id, given.outlook.event_id) if given.outlook else None
    return _converted(appointment_id, given), adoption


def _converted(appointment_id: str, given: AppointmentInput) -> Appointment:
    zone = given.time_zone
    start = parse_when(given.start, "start", given.all_day, zone)
    end = parse_when(given.end, "end", given.all_day, zone)
    if not _after(end, start):
        raise InvalidInput("end", "must be after start")
    appointment = Appointment(
        appointment_id=parse_appointment_id(appointment_id),
        subject=given.subject,
        start=start,
        end=end,
        time_zone=zone or "UTC",
        all_day=given.all_day,
        staff_ids=tuple(given.staff_ids),
        body=given.body,
        body_type=given.body_type,
        location=given.location,
        customers=tuple(Customer(c.name, c.email) for c in given.customers),
        show_as=given.show_as,
        sensitivity=given.sensitivity,
        categories=tuple(given.categories),
        video=given.video,
    )
    if given.recurrence is not None:
        recurrence = _recurrence(given.recurrence, appointment)
        appointment = Appointment(**{**_fields(appointment), "recurrence": recurrence})
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


def _recurrence(given: RecurrenceInput, appointment: Appointment) -> Recurrence:
    rrule = given.rrule
    try:
        rules.to_graph(rrule, appointment.start, appointment.time_zone, appointment.end)
    except rules.RecurrenceError as error:
        raise InvalidInput("recurrence.rrule", f"{error.part}: {error.reason}", status=422) from None
    except NoWindowsZone as error:  # Outlook would expand the series at other instants than the host
        raise InvalidInput("time_zone", error.reason, status=422) from None
    days = [
        _occurrence(value, f"recurrence.exdates[{index}]", rrule, appointment)
        for index, value in enumerate(given.exdates)
    ]
    exdates = tuple(sorted(set(days)))
    overrides = _overrides(given.overrides, rrule, appointment)
    clash = set(exdates) & {o.original_date for o in overrides}
    if clash:
        raise InvalidInput("recurrence.overrides", f"{min(clash)} is both cancelled (exdates) and overridden")
    if len(exdates) + len(overrides) > MAX_EXCEPTIONS:
        raise InvalidInput("recurrence", f"at most {MAX_EXCEPTIONS} exdates and overrides together")
    return Recurrence(rrule.strip(), exdates, overrides)


def _occurrence(value: str, field: str, rrule: str, appointment: Appointment) -> date:
    zone = appointment.time_zone
    when = parse_when(value, field, appointment.all_day or len(value) == 10, zone)
    day = rules.occurrence_date(when, zone)
    if not rules.is_occurrence(rrule, appointment.start, zone, day):
        raise InvalidInput(field, f"{day.isoformat()} is not an occurrence of the rule", status=422)
    return day


def _overrides(given: Sequence[OverrideInput], rrule: str, appointment: Appointment) -> tuple[Override, ...]:
    found: dict[date, Override] = {}
    zone = appointment.time_zone
    for index, override in enumerate(given):
        prefix = f"recurrence.overrides[{index}]."
        day = _occurrence(override.recurrence_id, f"{prefix}recurrence_id", rrule, appointment)
        if day in found:
            raise InvalidInput(f"{prefix}recurrence_id", f"{day.isoformat()} is overridden twice")
        start = parse_when(override.start, f"{prefix}start", appointment.all_day, zone)
        end = parse_when(override.end, f"{prefix}end", appointment.all_day, zone)
        if not _after(end, start):
            raise InvalidInput(f"{prefix}end", "must be after start")
        found[day] = Override(
            original_date=day,
            start=start,
            end=end,
            subject=override.subject or None,
            location=override.location or None,
            body=override.body or None,
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
