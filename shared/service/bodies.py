"""The host API's tenant, settings, staff, resync and console link bodies as pydantic models: they
validate a request body, name the member at fault by its path, and generate the OpenAPI components
(`functions/openapi.py`). The appointment body's models are beside them (`appointment_bodies.py`).

Every body follows two rules: a JSON `null` is the same as leaving the member out (`Body` drops nulls
before validating), and a rejection is one `InvalidInput` naming the member by its path in the request
(`settings.import_filter.categories[3]`, `legacy_ids[0].ews_id`), translated from pydantic's
`ValidationError` in `parse` alone. The limits are the constants of `shared/service/limits.py`.

The models parse into the domain's records (`TenantSettings`, `StaffMember` …), which stay plain
dataclasses. pydantic costs about 0.1 s to import, so nothing imported at the function app's cold start
imports this module: the parsers in `commands.py` and the OpenAPI document import it when first used.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from shared.domain.tenants import (
    AuthMode,
    ConflictPolicy,
    ImportFilter,
    ImportFilterMode,
    MultiStaffMode,
    RecurringEvents,
    TeamsMethod,
    TenantSettings,
    UserScope,
    normalise_tenant_id,
)
from shared.domain.users import LegacyLink, StaffSwitches
from shared.service import limits
from shared.service.errors import InvalidInput

M = TypeVar("M", bound=BaseModel)
DEFAULTS = TenantSettings()
NOT_BLANK = r"\S"


def refuse(reason: str, member: str | None = None) -> PydanticCustomError:
    """A rejection with today's wording; `member` names the member of the model at fault, when the
    check is the model's (two members together) rather than the member's own."""
    return PydanticCustomError("refused", reason, {"member": member} if member else None)


class Body(BaseModel):
    """A request body (or an object in one): nulls are absent members; unknown members are refused with
    `unknown_reason`, or ignored when it is None (as the staff and tenant bodies always have). A required
    member named in `missing_reasons` is refused with its own wording when it is absent."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid", frozen=True)
    unknown_reason: ClassVar[str | None] = None
    unknown_nulls_refused: ClassVar[bool] = True
    missing_reasons: ClassVar[dict[str, str]] = {}

    @model_validator(mode="before")
    @classmethod
    def _nulls_are_absent(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        present = {name: value for name, value in data.items() if value is not None}
        if cls.unknown_reason is not None:
            named = data if cls.unknown_nulls_refused else present
            unknown = sorted(set(named) - set(cls.model_fields))
            if unknown:
                raise refuse(cls.unknown_reason, unknown[0])
        else:
            present = {name: value for name, value in present.items() if name in cls.model_fields}
        for name, reason in cls.missing_reasons.items():
            if name not in present:
                raise refuse(reason, name)
        return present


class Lenient(Body):
    """A body whose unknown members are ignored (schema: open)."""

    model_config = ConfigDict(extra="ignore")


def _utc(value: Any) -> Any:
    """An ISO 8601 date-time with an offset, in UTC (as `_datetime` took it)."""
    if not isinstance(value, str):
        raise refuse("must be an ISO 8601 date-time string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise refuse("must be an ISO 8601 date-time") from None
    if parsed.tzinfo is None:
        raise refuse("must carry a UTC offset (for example 2027-01-31T00:00:00Z)")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # 0001-01-01 ahead of UTC, 9999-12-31 behind it
        raise refuse("is out of range") from None


UtcTime = Annotated[
    datetime, BeforeValidator(_utc), WithJsonSchema({"type": "string", "format": "date-time"})
]
ClientId = Annotated[StrictStr, Field(max_length=36, json_schema_extra={"format": "uuid"})]
Secret = Annotated[
    StrictStr, Field(min_length=1, max_length=limits.MAX_CLIENT_SECRET, json_schema_extra={"writeOnly": True})
]
Address = Annotated[
    StrictStr,
    Field(
        max_length=limits.MAX_ADDRESS,
        description="An address like someone@contoso.com; blank is the same as absent.",
        json_schema_extra={"pattern": r"^\s*$|@"},
    ),
]
TenantId = Annotated[
    StrictStr,
    Field(
        min_length=1,
        max_length=limits.MAX_TENANT_ID,
        pattern=limits.TENANT_ID_PATTERN,
        description="The tenant: its directory GUID or a verified domain, as it was created.",
    ),
]
DisplayName = Annotated[StrictStr, Field(min_length=1, max_length=limits.MAX_DISPLAY_NAME, pattern=NOT_BLANK)]
TodoListName = Annotated[
    StrictStr, Field(min_length=1, max_length=limits.MAX_TODO_LIST_NAME, pattern=NOT_BLANK)
]
Category = Annotated[StrictStr, Field(min_length=1, max_length=limits.MAX_CATEGORY_NAME, pattern=NOT_BLANK)]
LegacyId = Annotated[StrictStr, Field(max_length=limits.MAX_LEGACY_ID_LENGTH)]
LegacyAppointmentId = Annotated[
    StrictStr, Field(min_length=1, max_length=limits.MAX_LEGACY_ID_LENGTH, pattern=NOT_BLANK)
]


def _client_id(value: str) -> str:
    if not limits.GUID_ONLY.match(value):
        raise refuse("must be the app's client id (a GUID)")
    return value.lower()


# Settings


class ImportFilterBody(Body):
    unknown_reason = "is not a field of the import filter"
    mode: ImportFilterMode = ImportFilterMode.ALL
    categories: Annotated[
        list[Category],
        Field(
            max_length=limits.MAX_CATEGORIES,
            description=f"Outlook category names (at most {limits.MAX_CATEGORY_CHARS} characters "
            "together); with mode categories, at least one.",
        ),
    ] = []

    @model_validator(mode="after")
    def _fits_and_names_one(self) -> ImportFilterBody:
        if sum(map(len, self.categories)) > limits.MAX_CATEGORY_CHARS:
            raise refuse(
                f"the names must have at most {limits.MAX_CATEGORY_CHARS} characters together", "categories"
            )
        if self.mode is ImportFilterMode.CATEGORIES and not self.categories:
            raise refuse("name at least one category when mode is categories", "categories")
        return self

    def record(self) -> ImportFilter:
        return ImportFilter(self.mode, tuple(self.categories))


class Settings(Body):
    """A tenant's settings; on a PATCH, absent members keep their values."""

    unknown_reason = "is not a setting"
    window_days_back: Annotated[
        StrictInt, Field(ge=limits.WINDOW_DAYS_BACK[0], le=limits.WINDOW_DAYS_BACK[1])
    ] = DEFAULTS.window_days_back
    window_days_forward: Annotated[
        StrictInt, Field(ge=limits.WINDOW_DAYS_FORWARD[0], le=limits.WINDOW_DAYS_FORWARD[1])
    ] = DEFAULTS.window_days_forward
    import_filter: ImportFilterBody = ImportFilterBody()
    privacy_mode: Annotated[StrictBool, Field(description="Pass only free/busy to the host.")] = (
        DEFAULTS.privacy_mode
    )
    show_free_events: StrictBool = DEFAULTS.show_free_events
    todo_list_name: TodoListName = DEFAULTS.todo_list_name
    teams_method: TeamsMethod = DEFAULTS.teams_method
    multi_staff_mode: MultiStaffMode = DEFAULTS.multi_staff_mode
    user_scope: UserScope = DEFAULTS.user_scope
    conflict_policy: ConflictPolicy = DEFAULTS.conflict_policy
    mail_deadline_hours: Annotated[
        StrictInt,
        Field(
            ge=limits.MAIL_DEADLINE_HOURS[0],
            le=limits.MAIL_DEADLINE_HOURS[1],
            description="A message not sent within this many hours of its PUT fails with the reason.",
        ),
    ] = DEFAULTS.mail_deadline_hours
    tentative_blocks: Annotated[
        StrictBool,
        Field(description="Availability: a tentative event makes its staff member unavailable."),
    ] = DEFAULTS.tentative_blocks
    working_elsewhere_blocks: Annotated[
        StrictBool,
        Field(description='Availability: a "working elsewhere" event makes its staff member unavailable.'),
    ] = DEFAULTS.working_elsewhere_blocks
    teams_organizer: Annotated[
        Address | None,
        Field(
            description="service_account: the UPN or mailbox of the organisation that organises every Teams "
            "meeting (it is a participant of each); checked against the directory."
        ),
    ] = DEFAULTS.teams_organizer
    monitor_retention_days: Annotated[
        StrictInt,
        Field(
            ge=limits.MONITOR_RETENTION_DAYS[0],
            le=limits.MONITOR_RETENTION_DAYS[1],
            description="The message monitor keeps each message this many days; older ones are pruned daily.",
        ),
    ] = DEFAULTS.monitor_retention_days
    feed_retention_days: Annotated[
        StrictInt,
        Field(
            ge=limits.FEED_RETENTION_DAYS[0],
            le=limits.FEED_RETENTION_DAYS[1],
            description="The change feed keeps each change this many days (pruned nightly); a cursor older "
            "than that is answered 410. A change of it is published as `tenant.feed_retention_changed`.",
        ),
    ] = DEFAULTS.feed_retention_days

    recurring_events: Annotated[
        RecurringEvents,
        Field(
            description="How an Outlook series reaches the host: `series` (the series master with its RFC "
            "5545 rule, exdates and zone; exceptions as overrides naming the series and their original "
            "start) or `occurrences` (every occurrence in the window as an event of its own). A change is "
            "applied by a full read of every user: the host is told each series or occurrence anew once, "
            "and what it knew in the other form is deleted (reason `filtered`)."
        ),
    ] = DEFAULTS.recurring_events

    @field_validator("teams_organizer")
    @classmethod
    def _organiser(cls, value: str | None) -> str | None:
        if value and "@" not in value:
            raise refuse("must be a UPN or mailbox address like teams@contoso.com")
        return value or None

    def applied_to(self, base: TenantSettings) -> TenantSettings:
        """`base` with the members this body gave."""
        given: dict[str, Any] = {name: getattr(self, name) for name in self.model_fields_set}
        if "import_filter" in given:
            given["import_filter"] = self.import_filter.record()
        return replace(base, **given)


# Tenants


class CustomerSecret(Lenient):
    """The customer's own app: its client id and a secret (checked by signing in before it is kept)."""

    client_id: ClientId
    client_secret: Secret
    client_secret_expires_at: UtcTime | None = None

    _guid = field_validator("client_id")(_client_id)


class AdminConsentAuth(Body):
    unknown_reason = "is not used with admin_consent"
    unknown_nulls_refused = False
    mode: Literal[AuthMode.ADMIN_CONSENT]


class CustomerAppAuth(CustomerSecret):
    mode: Literal[AuthMode.CUSTOMER_APP]


class TenantCreate(Lenient):
    tenant_id: TenantId
    display_name: DisplayName
    auth: Annotated[AdminConsentAuth | CustomerAppAuth, Field(discriminator="mode")]
    settings: Settings = Settings()

    @field_validator("tenant_id", mode="before")
    @classmethod
    def _tenant_id(cls, value: Any) -> Any:
        """A GUID or a verified domain, normalised as stored (`normalise_tenant_id`)."""
        if isinstance(value, str) and value.strip() and len(value.strip()) <= limits.MAX_TENANT_ID:
            normalised = normalise_tenant_id(value)
            if normalised is None:
                raise refuse("must be a tenant GUID or a verified domain such as contoso.com")
            return normalised
        return value


class Reauthorize(Lenient):
    """A new secret for the customer's app; without `client_secret`, a new consent link (admin consent).
    The client id defaults to the app on record."""

    client_id: ClientId | None = None
    client_secret: Secret | None = None
    client_secret_expires_at: UtcTime | None = None

    _guid = field_validator("client_id")(_client_id)


# Staff


class LegacyIdBody(Lenient):
    appointment_id: LegacyAppointmentId
    ews_id: LegacyId | None = None
    ical_uid: LegacyId | None = None

    @model_validator(mode="after")
    def _findable(self) -> LegacyIdBody:
        if not self.ews_id and not self.ical_uid:
            raise refuse("give ews_id or ical_uid (or both)", "ews_id")
        return self

    def record(self) -> LegacyLink:
        return LegacyLink(self.appointment_id, self.ews_id or None, self.ical_uid or None)


def _bare_ews_id(value: Any) -> Any:
    """A bare string is an EWS item id that is also the host's appointment id."""
    if isinstance(value, str) and value:
        if len(value) > limits.MAX_LEGACY_ID_LENGTH:
            raise refuse(f"must be at most {limits.MAX_LEGACY_ID_LENGTH} characters")
        return {"appointment_id": value, "ews_id": value}
    if not isinstance(value, dict):
        raise refuse("must be an EWS item id or {appointment_id, ews_id, ical_uid}")
    return value


LegacyItem = Annotated[
    LegacyIdBody,
    BeforeValidator(
        _bare_ews_id,
        json_schema_input_type=Annotated[str, Field(min_length=1, max_length=limits.MAX_LEGACY_ID_LENGTH)]
        | LegacyIdBody,
    ),
]


def _fits_the_row(value: list[LegacyIdBody]) -> list[LegacyIdBody]:
    stored = json.dumps([[i.appointment_id, i.ews_id or None, i.ical_uid or None] for i in value])
    if len(stored) > limits.MAX_LEGACY_JSON:
        raise refuse(f"must be at most {limits.MAX_LEGACY_JSON} characters together, as JSON")
    return value


LegacyIds = Annotated[
    list[LegacyItem],
    Field(
        max_length=limits.MAX_LEGACY_IDS,
        description="Appointments the host wrote before (EWS era), linked during migration instead of "
        "being announced as new. A bare string is an EWS item id that is also the appointment id. At "
        f"most {limits.MAX_LEGACY_JSON} characters together as JSON.",
    ),
    AfterValidator(_fits_the_row),
]


class StaffSwitchesBody(Lenient):
    """What the connector does for this staff member. An absent switch keeps its current value (a new
    staff member's: `calendar_to_outlook`, `calendar_from_outlook`, `video`, `tasks_to_outlook` and
    `tasks_from_outlook` on, `mail` off). Members this
    version does not know (switches of later capabilities) are ignored."""

    calendar_to_outlook: Annotated[
        StrictBool | None,
        Field(
            description="Write the host's appointments into this staff member's calendar. Off: their copies "
            "are left as they are (state `disabled`); on again, every appointment naming them is written."
        ),
    ] = None
    calendar_from_outlook: Annotated[
        StrictBool | None,
        Field(
            description="Tell the host about this staff member's Outlook events (`event.*` on the feed). "
            "Off: the calendar is still read (availability stays current) but nothing is announced; on "
            "again, what changed meanwhile is announced once."
        ),
    ] = None
    video: Annotated[
        StrictBool | None,
        Field(
            description="This staff member's copies carry the appointment's Teams meeting, and they may "
            "organise it. Off: their copies carry no join details and someone else organises."
        ),
    ] = None
    mail: Annotated[
        StrictBool | None,
        Field(description="Send mail from this staff member's mailbox (PUT /mail/{message_id})."),
    ] = None
    tasks_to_outlook: Annotated[
        StrictBool | None,
        Field(
            description="Write the host's tasks (PUT /tasks/{task_id}) into this staff member's To Do list. "
            "Off: their tasks are accepted and reported `failed` with the reason, and what is in To Do stays."
        ),
    ] = None
    tasks_from_outlook: Annotated[
        StrictBool | None,
        Field(
            description="Tell the host what this staff member adds, changes or completes in their To Do list."
        ),
    ] = None

    def changes(self) -> dict[str, bool]:
        """The switches given, by name."""
        return {name: value for name, value in self.model_dump().items() if value is not None}

    def record(self) -> StaffSwitches:
        """The switches of a new staff member: the defaults, with those given."""
        return StaffSwitches().changed(self.changes())


class Staff(Lenient):
    """Give email or upn (or both)."""

    email: Address | None = None
    upn: Address | None = None
    display_name: Annotated[StrictStr, Field(max_length=limits.MAX_DISPLAY_NAME)] = ""
    enabled: StrictBool = True
    legacy_ids: LegacyIds = []
    switches: StaffSwitchesBody = StaffSwitchesBody()
    todo_list_name: Annotated[
        TodoListName | None,
        Field(
            description="The To Do list this staff member's tasks go to, instead of the tenant's "
            "`todo_list_name` (found by name in their mailbox, made when missing). Absent: the tenant's."
        ),
    ] = None

    @field_validator("email", "upn")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value and "@" not in value:
            raise refuse("must be an address like someone@contoso.com")
        return value or None

    @model_validator(mode="after")
    def _matchable(self) -> Staff:
        if not self.email and not self.upn:
            raise refuse("give email or upn (or both) so the staff member can be matched", "email")
        return self


# Resyncs and console links


class SwitchesUpdate(Body):
    """Set some switches for many staff members at once (the console's mass update)."""

    unknown_reason = "is not a field of a switches update"
    missing_reasons: ClassVar[dict[str, str]] = {
        "staff_ids": "name the staff members to change",
        "switches": "name the switches to set",
    }
    staff_ids: Annotated[
        list[Annotated[StrictStr, Field(pattern=limits.STAFF_ID_RE.pattern)]],
        Field(min_length=1, max_length=limits.MAX_SWITCH_STAFF, description="The staff members to change."),
    ]
    switches: StaffSwitchesBody

    @field_validator("switches")
    @classmethod
    def _some(cls, value: StaffSwitchesBody) -> StaffSwitchesBody:
        if not value.changes():
            raise refuse(
                "name at least one switch to set (calendar_to_outlook, calendar_from_outlook, video, mail, "
                "tasks_to_outlook, tasks_from_outlook)"
            )
        return value


class UserResync(Lenient):
    force: Annotated[
        StrictBool, Field(description="Apply the deletions the mass-deletion guard held back.")
    ] = False


class TenantResync(Lenient):
    only_failed: Annotated[StrictBool, Field(description="Only the users in error.")] = False


def _ttl(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int):
        raise refuse("must be an integer")
    if not limits.MIN_TTL_MINUTES <= value <= limits.MAX_TTL_MINUTES:
        raise refuse(f"must be between {limits.MIN_TTL_MINUTES} and {limits.MAX_TTL_MINUTES}")
    return value


class ConsoleLinkRequest(Body):
    unknown_reason = "is not a field of a console link request"
    ttl_minutes: Annotated[
        int,
        Field(ge=limits.MIN_TTL_MINUTES, le=limits.MAX_TTL_MINUTES, description="The link's lifetime."),
        BeforeValidator(_ttl),
    ] = limits.DEFAULT_TTL_MINUTES


# Validation errors, translated in one place


_TAG = re.compile(r"'(\w+)'>")
_UNION_TAGS = frozenset(mode.value for mode in AuthMode)  # a tagged union's branch in an error's path
_REASONS = {
    "missing": "is required",
    "string_type": "must be a string",
    "string_too_short": "must not be empty",
    "string_pattern_mismatch": "must not be blank",
    "bool_type": "must be true or false",
    "int_type": "must be an integer",
    "list_type": "must be a list",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "dict_type": "must be an object",
    "union_tag_not_found": "is required",
}


def _reason(error: ErrorDetails) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind in _REASONS:
        return _REASONS[kind]
    if kind == "string_too_long":
        return f"must be at most {ctx['max_length']} characters"
    if kind == "too_long":
        return f"must have at most {ctx['max_length']} items"
    if kind == "too_short":
        return f"must have at least {ctx['min_length']} items"
    if kind in {"greater_than_equal", "greater_than"}:
        return f"must be at least {ctx.get('ge', ctx.get('gt'))}"
    if kind in {"less_than_equal", "less_than"}:
        return f"must be at most {ctx.get('le', ctx.get('lt'))}"
    if kind in {"enum", "literal_error"}:
        return f"must be one of: {str(ctx['expected']).replace(chr(39), '').replace(' or ', ', ')}"
    if kind == "union_tag_invalid":  # the tags as enum members' reprs: <AuthMode.X: 'x'>
        return "must be one of: " + ", ".join(_TAG.findall(str(ctx["expected_tags"])))
    return str(error["msg"])


def _path(error: ErrorDetails, prefix: str) -> str:
    parts: list[str | int] = [p for p in error["loc"] if p not in _UNION_TAGS]
    ctx = error.get("ctx") or {}
    if ctx.get("member"):
        parts.append(ctx["member"])
    elif error["type"] in {"union_tag_not_found", "union_tag_invalid"}:
        parts.append(str(ctx.get("discriminator", "mode")).strip("'"))
    name = prefix
    for part in parts:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "body"


def invalid_input(error: ValidationError, prefix: str = "") -> InvalidInput:
    """pydantic's first error as the API's: the member by its path under `prefix`, and the reason."""
    first = error.errors(include_url=False)[0]
    return InvalidInput(_path(first, prefix), _reason(first))


def parse(model: type[M], body: Any, prefix: str = "") -> M:
    """`body` as `model`, or InvalidInput naming the member at fault by its path under `prefix`."""
    try:
        return model.model_validate(body)
    except ValidationError as error:
        raise invalid_input(error, prefix) from None


def parse_legacy_ids(value: Any) -> list[LegacyIdBody]:
    """A staff member's `legacy_ids` alone (as `Staff` takes them)."""
    try:
        return _LEGACY_IDS.validate_python(value)
    except ValidationError as error:
        raise invalid_input(error, "legacy_ids") from None


_LEGACY_IDS: TypeAdapter[list[LegacyIdBody]] = TypeAdapter(LegacyIds)
REQUEST_MODELS: tuple[type[BaseModel], ...] = (
    Settings,
    TenantCreate,
    Staff,
    Reauthorize,
    UserResync,
    TenantResync,
    ConsoleLinkRequest,
    SwitchesUpdate,
)
