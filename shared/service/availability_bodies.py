"""The availability question's body as pydantic models (OpenAPI component `AvailabilityQuestion`), and the
busy request's query: each member's limit named and explained, then the conversion into the engine's
`Question`. Times without an offset are wall-clock times in `time_zone`.

Stated maxima (`shared/service/limits.py`): at most 20 participant groups and 50 staff in all (one
getSchedule batch answers them all even when none is synced, and the question stays cheap); periods
spanning at most 62 days from the first start to the last end (getSchedule's longest window, so the
fallback can always answer) and at most 100 of them; `max_results` at most 512. pydantic is imported with
this module, which `parse_question` imports when first called.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final, Literal

from pydantic import BeforeValidator, Field, StrictBool, StrictInt, StrictStr, model_validator

from shared.domain import availability as engine
from shared.domain.timezones import UnknownZone, require_zone
from shared.service.appointment_bodies import StaffIds
from shared.service.bodies import Body, parse, refuse
from shared.service.errors import InvalidInput
from shared.service.limits import (
    DEFAULT_RESULTS,
    EARLIEST,
    LATEST,
    MAX_BUFFER_MINUTES,
    MAX_INTERVAL_MINUTES,
    MAX_PARTICIPANT_GROUPS,
    MAX_PERIODS,
    MAX_QUESTION_DAYS,
    MAX_QUESTION_STAFF,
    MAX_RESULTS,
)

LOCAL_TIME = "must be an ISO 8601 date-time (without an offset it is in time_zone)"
INTERVAL = "must divide 60 (5, 10, 15, 20, 30, 60 ...) or be a multiple of 60, at most 1440"
STAFF_REASON = (
    f"names more than {MAX_QUESTION_STAFF} staff members in all (one getSchedule batch answers a "
    "question, and a question stays cheap)"
)
SPAN_REASON = (
    f"must not span more than {MAX_QUESTION_DAYS} days from the first start to the last end "
    "(Graph's getSchedule answers at most that for staff not yet synced)"
)

OUT_OF_RANGE: Final = f"must fall on a date from {EARLIEST} to {LATEST} (UTC)"


def _required(value: Any) -> Any:
    if value == "all" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        return value
    raise refuse('must be "all" or how many of the group must be free (at least 1)')


class Participants(Body):
    """A group: all of `staff_ids` free, or at least `required` of them."""

    unknown_reason = "is not a member of a participant group"
    staff_ids: StaffIds
    required: Annotated[
        Literal["all"] | Annotated[StrictInt, Field(ge=1)],
        Field(description='"all" (the default), or how many of the group must be free.'),
        BeforeValidator(_required),
    ] = "all"

    @model_validator(mode="after")
    def _enough(self) -> Participants:
        if self.required != "all" and int(self.required) > len(self.staff_ids):
            raise refuse(f"must be at most the group's {len(self.staff_ids)} staff members", "required")
        return self


class QuestionPeriod(Body):
    """A period to look in: `start` before `end`."""

    unknown_reason = "is not a member of a period"
    start: Annotated[StrictStr, Field(json_schema_extra={"format": "date-time"})]
    end: Annotated[StrictStr, Field(json_schema_extra={"format": "date-time"})]


class Buffer(Body):
    """Free time needed around a slot: before its start and after its end."""

    unknown_reason = "is not a member of buffer"
    before_minutes: Annotated[StrictInt, Field(ge=0, le=MAX_BUFFER_MINUTES)] = 0
    after_minutes: Annotated[StrictInt, Field(ge=0, le=MAX_BUFFER_MINUTES)] = 0


class AvailabilityQuestion(Body):
    """When can these participants meet for `duration_minutes` within `periods`?"""

    unknown_reason = "is not a member of an availability question"
    participants: Annotated[
        list[Participants],
        Field(
            min_length=1,
            max_length=MAX_PARTICIPANT_GROUPS,
            description=f"Every group must be satisfied; at most {MAX_PARTICIPANT_GROUPS} groups and "
            f"{MAX_QUESTION_STAFF} staff members in all (one getSchedule batch, a cheap question).",
        ),
    ]
    periods: Annotated[
        list[QuestionPeriod],
        Field(
            min_length=1,
            max_length=MAX_PERIODS,
            description=f"At most {MAX_PERIODS}, spanning at most {MAX_QUESTION_DAYS} days from the first "
            "start to the last end (getSchedule's longest window).",
        ),
    ]
    duration_minutes: Annotated[
        StrictInt, Field(ge=1, le=MAX_QUESTION_DAYS * 24 * 60, description="At most the longest period.")
    ]
    interval_minutes: Annotated[
        StrictInt,
        Field(
            ge=1,
            le=MAX_INTERVAL_MINUTES,
            description="Slots start at local times that are multiples of this from midnight in "
            "time_zone: a divisor of 60 or a multiple of 60.",
        ),
    ] = 15
    buffer: Buffer = Buffer()
    time_zone: Annotated[
        StrictStr,
        Field(max_length=64, description="IANA; where slots are aligned and offset-less times are read."),
    ] = "UTC"
    working_hours: Annotated[
        StrictBool, Field(description="Only within each staff member's Outlook working hours.")
    ] = False
    max_results: Annotated[StrictInt, Field(ge=1, le=MAX_RESULTS)] = DEFAULT_RESULTS
    format: Annotated[
        Literal["slots", "periods"],
        Field(description="slots: aligned slots; periods: the merged free periods."),
    ] = "slots"
    ranking: Annotated[
        Literal["listed", "least_booked"],
        Field(
            description="How a slot names each group's free staff: as listed, or least booked first "
            "(round robin: book the first named)."
        ),
    ] = "listed"

    @model_validator(mode="after")
    def _checked(self) -> AvailabilityQuestion:
        staff = {s for group in self.participants for s in group.staff_ids}
        if len(staff) > MAX_QUESTION_STAFF:
            raise refuse(STAFF_REASON, "participants")
        minutes = self.interval_minutes
        if not (60 % minutes == 0 or minutes % 60 == 0):
            raise refuse(INTERVAL, "interval_minutes")
        try:
            zone = require_zone(self.time_zone)
        except UnknownZone as error:
            raise refuse(error.reason, "time_zone") from None
        periods = [_period(p, zone, index) for index, p in enumerate(self.periods)]
        if max(p.end for p in periods) - min(p.start for p in periods) > timedelta(days=MAX_QUESTION_DAYS):
            raise refuse(SPAN_REASON, "periods")
        if timedelta(minutes=self.duration_minutes) > max(p.end - p.start for p in periods):
            raise refuse("is longer than the longest period", "duration_minutes")
        return self

    def question(self) -> engine.Question:
        """The engine's question (the body was checked whole when it was parsed)."""
        zone = require_zone(self.time_zone)
        ranking = engine.Ranking(self.ranking)
        return engine.Question(
            groups=tuple(engine.Group(tuple(g.staff_ids), g.required, ranking) for g in self.participants),
            periods=tuple(_period(p, zone, i) for i, p in enumerate(self.periods)),
            duration=timedelta(minutes=self.duration_minutes),
            interval=timedelta(minutes=self.interval_minutes),
            buffer_before=timedelta(minutes=self.buffer.before_minutes),
            buffer_after=timedelta(minutes=self.buffer.after_minutes),
            working_hours=self.working_hours,
            max_results=self.max_results,
            zone=zone,
        )


def _period(period: QuestionPeriod, zone: Any, index: int) -> engine.Period:
    start = _local(period.start, zone, f"periods[{index}].start")
    end = _local(period.end, zone, f"periods[{index}].end")
    if end <= start:
        raise refuse("must be after start", f"periods[{index}].end")
    return engine.Period(start, end)


def _local(text: str, zone: Any, member: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise refuse(LOCAL_TIME, member) from None
    value = value if value.tzinfo is not None else value.replace(tzinfo=zone)
    try:
        instant = value.astimezone(UTC)
    except OverflowError:
        raise refuse("is out of range", member) from None
    if not EARLIEST <= instant.date() <= LATEST:
        raise refuse(OUT_OF_RANGE, member)
    return instant


def parse_question(body: Any) -> tuple[engine.Question, bool]:
    """The question, and whether free periods (not slots) are asked for; InvalidInput names the member."""
    model = parse(AvailabilityQuestion, body)
    try:
        return model.question(), model.format == "periods"
    except engine.InvalidQuestion as error:  # the model's checks come first; a rule of the engine's own
        raise InvalidInput("body", f"{error.field}: {error.reason}") from None


def parse_span(start: str | None, end: str | None) -> tuple[datetime, datetime]:
    """The busy request's `start` and `end` (ISO 8601; without an offset, UTC), at most 62 days apart."""
    first = _instant(start, "start")
    last = _instant(end, "end")
    if last <= first:
        raise InvalidInput("end", "must be after start")
    if last - first > timedelta(days=MAX_QUESTION_DAYS):
        raise InvalidInput(
            "end",
            f"must be at most {MAX_QUESTION_DAYS} days after start (Graph's getSchedule answers at most "
            "that for staff not yet synced)",
        )
    return first, last


def _instant(text: str | None, name: str) -> datetime:
    if not text:
        raise InvalidInput(name, "is required (an ISO 8601 date-time)")
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(name, "must be an ISO 8601 date-time") from None
    try:
        instant = (value if value.tzinfo is not None else value.replace(tzinfo=UTC)).astimezone(UTC)
    except OverflowError:
        raise InvalidInput(name, "is out of range") from None
    if not EARLIEST <= instant.date() <= LATEST:
        raise InvalidInput(name, OUT_OF_RANGE)
    return instant
