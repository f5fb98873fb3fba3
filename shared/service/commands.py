"""Typed commands parsed from request bodies; every rejection names the field and the reason.

Two rules hold for every field: a JSON `null` is the same as leaving the field out (a default, or on a
PATCH the current value; a required field is then missing), and a rejection names the field by its path
in the request: `settings.import_filter.categories[3]`, `legacy_ids[0].ews_id`. The limits are
constants here, and `functions/openapi.py` publishes the same constants.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Final, TypeVar

from shared.domain.tenants import (
    AuthMode,
    ConflictPolicy,
    ImportFilter,
    ImportFilterMode,
    MultiStaffMode,
    TeamsMethod,
    TenantSettings,
    UserScope,
    normalise_tenant_id,
)
from shared.domain.users import LegacyLink, StaffMember
from shared.service.errors import InvalidInput

GUID_ONLY: Final = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
STAFF_ID_RE: Final = re.compile(r"^[A-Za-z0-9._~@+=-]{1,128}$")  # safe as a Table Storage key
STAFF_ID_CHARS: Final = "1-128 characters: letters, digits and . _ ~ @ + = -"
MAX_TENANT_ID: Final = 253  # a DNS name; a GUID is 36
MAX_DISPLAY_NAME: Final = 256
MAX_ADDRESS: Final = 320  # an email address or UPN (RFC 5321: 64 + 1 + 255)
MAX_CLIENT_SECRET: Final = 1024
MAX_LEGACY_IDS: Final = 2_000  # kept on the user's row (Table Storage entities hold 1 MB)
MAX_LEGACY_ID_LENGTH: Final = 512
# The links are kept on the user's row as ASCII JSON (Table Storage entities hold 1 MiB of UTF-16).
MAX_LEGACY_JSON: Final = 400_000
MAX_TODO_LIST_NAME: Final = 255
WINDOW_DAYS_BACK: Final = (0, 365)
WINDOW_DAYS_FORWARD: Final = (1, 730)
# The settings are kept in the tenant's row as ASCII JSON in one string property (at most 32K UTF-16
# units), where a character beyond ASCII takes up to 12 (an astral one: two \uXXXX escapes). So the
# category names (each at most 255 characters, as Outlook's: "Maximum length is 255 characters",
# https://learn.microsoft.com/en-us/javascript/api/outlook/office.categorydetails) are at most 2,000
# together: 24,000 at worst, beside the To Do list name's 3,060 and the rest.
MAX_CATEGORIES: Final = 50
MAX_CATEGORY_NAME: Final = 255
MAX_CATEGORY_CHARS: Final = 2_000
E = TypeVar("E", bound=Enum)


def _string(
    body: dict[str, Any], name: str, *, required: bool = True, max_length: int = 1024, prefix: str = ""
) -> str | None:
    value = body.get(name)
    field = f"{prefix}.{name}" if prefix else name
    if value is None:
        if required:
            raise InvalidInput(field, "is required")
        return None
    if not isinstance(value, str):
        raise InvalidInput(field, "must be a string")
    value = value.strip()
    if required and not value:
        raise InvalidInput(field, "must not be empty")
    if len(value) > max_length:
        raise InvalidInput(field, f"must be at most {max_length} characters")
    return value or None


def _bool(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InvalidInput(name, "must be true or false")
    return value


def parse_flag(body: dict[str, Any], name: str, default: bool = False) -> bool:
    """An optional boolean of a request body (`force`, `only_failed`)."""
    return _bool(body, name, default)


def _int(body: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(name, "must be an integer")
    if not low <= value <= high:
        raise InvalidInput(name, f"must be between {low} and {high}")
    return value


def _enum(body: dict[str, Any], name: str, kind: type[E], default: E | None) -> E:
    value = body.get(name)
    if value is None:
        if default is None:
            raise InvalidInput(name, "is required")
        return default
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(str(member.value) for member in kind)
        raise InvalidInput(name, f"must be one of: {allowed}") from None


def _datetime(body: dict[str, Any], name: str) -> datetime | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(name, "must be an ISO 8601 date-time string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(name, "must be an ISO 8601 date-time") from None
    if parsed.tzinfo is None:
        raise InvalidInput(name, "must carry a UTC offset (for example 2027-01-31T00:00:00Z)")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # 0001-01-01 ahead of UTC, 9999-12-31 behind it
        raise InvalidInput(name, "is out of range") from None


def parse_settings(
    body: Any, base: TenantSettings | None = None, *, prefix: str = "settings"
) -> TenantSettings:
    """Settings from JSON; absent fields keep `base` (so PATCH and create share one parser)."""
    base = base or TenantSettings()
    if body is None:
        return base
    if not isinstance(body, dict):
        raise InvalidInput(prefix, "must be an object")
    known = {
        "window_days_back",
        "window_days_forward",
        "import_filter",
        "privacy_mode",
        "show_free_events",
        "todo_list_name",
        "teams_method",
        "multi_staff_mode",
        "user_scope",
        "conflict_policy",
    }
    unknown = sorted(set(body) - known)
    if unknown:
        raise InvalidInput(f"{prefix}.{unknown[0]}", "is not a setting")

    def named(error: InvalidInput) -> InvalidInput:
        return InvalidInput(f"{prefix}.{error.field}", error.reason)

    try:
        import_filter = base.import_filter
        if body.get("import_filter") is not None:
            import_filter = _parse_import_filter(body["import_filter"])
        todo = None
        if body.get("todo_list_name") is not None:
            todo = _string(body, "todo_list_name", max_length=MAX_TODO_LIST_NAME)
        settings = replace(
            base,
            window_days_back=_int(body, "window_days_back", base.window_days_back, *WINDOW_DAYS_BACK),
            window_days_forward=_int(
                body, "window_days_forward", base.window_days_forward, *WINDOW_DAYS_FORWARD
            ),
            import_filter=import_filter,
            privacy_mode=_bool(body, "privacy_mode", base.privacy_mode),
            show_free_events=_bool(body, "show_free_events", base.show_free_events),
            todo_list_name=todo if todo is not None else base.todo_list_name,
            teams_method=_enum(body, "teams_method", TeamsMethod, base.teams_method),
            multi_staff_mode=_enum(body, "multi_staff_mode", MultiStaffMode, base.multi_staff_mode),
            user_scope=_enum(body, "user_scope", UserScope, base.user_scope),
            conflict_policy=_enum(body, "conflict_policy", ConflictPolicy, base.conflict_policy),
        )
    except InvalidInput as error:
        raise named(error) from None
    return settings


def _parse_import_filter(value: Any) -> ImportFilter:
    field = "import_filter.categories"
    if not isinstance(value, dict):
        raise InvalidInput("import_filter", "must be an object {mode, categories}")
    unknown = sorted(set(value) - {"mode", "categories"})
    if unknown:
        raise InvalidInput(f"import_filter.{unknown[0]}", "is not a field of the import filter")
    try:
        mode = _enum(value, "mode", ImportFilterMode, ImportFilterMode.ALL)
    except InvalidInput as error:
        raise InvalidInput("import_filter.mode", error.reason) from None
    categories = value.get("categories")
    if categories is None:
        categories = []
    if not isinstance(categories, list):
        raise InvalidInput(field, "must be a list of category names")
    if len(categories) > MAX_CATEGORIES:
        raise InvalidInput(field, f"must have at most {MAX_CATEGORIES} categories")
    names: list[str] = []
    for index, name in enumerate(categories):
        if not isinstance(name, str) or not name.strip():
            raise InvalidInput(f"{field}[{index}]", "must be a non-empty category name")
        if len(name.strip()) > MAX_CATEGORY_NAME:
            raise InvalidInput(f"{field}[{index}]", f"must be at most {MAX_CATEGORY_NAME} characters")
        names.append(name.strip())
    if sum(map(len, names)) > MAX_CATEGORY_CHARS:
        raise InvalidInput(field, f"the names must have at most {MAX_CATEGORY_CHARS} characters together")
    if mode is ImportFilterMode.CATEGORIES and not names:
        raise InvalidInput(field, "name at least one category when mode is categories")
    return ImportFilter(mode, tuple(names))


@dataclass(frozen=True, slots=True)
class CustomerAppCredential:
    client_id: str
    client_secret: str
    secret_expires_at: datetime | None

    def __repr__(self) -> str:  # the secret never reaches a log through a repr
        return f"CustomerAppCredential(client_id={self.client_id!r})"


@dataclass(frozen=True, slots=True)
class CreateTenant:
    tenant_id: str
    display_name: str
    auth_mode: AuthMode
    customer_app: CustomerAppCredential | None
    settings: TenantSettings


def parse_customer_app(auth: dict[str, Any], prefix: str = "auth") -> CustomerAppCredential:
    """The customer app's credential; `prefix` is the object's path in the request ("" at the top)."""

    def path(field: str) -> str:
        return f"{prefix}.{field}" if prefix else field

    try:
        client_id = _string(auth, "client_id", max_length=36)
        secret = _string(auth, "client_secret", max_length=MAX_CLIENT_SECRET)
        expires = _datetime(auth, "client_secret_expires_at")
    except InvalidInput as error:
        raise InvalidInput(path(error.field), error.reason) from None
    assert client_id and secret
    if not GUID_ONLY.match(client_id):
        raise InvalidInput(path("client_id"), "must be the app's client id (a GUID)")
    return CustomerAppCredential(client_id.lower(), secret, expires)


def parse_create_tenant(body: dict[str, Any]) -> CreateTenant:
    raw_id = _string(body, "tenant_id", max_length=MAX_TENANT_ID)
    assert raw_id is not None
    tenant_id = normalise_tenant_id(raw_id)
    if tenant_id is None:
        raise InvalidInput("tenant_id", "must be a tenant GUID or a verified domain such as contoso.com")
    display_name = _string(body, "display_name", max_length=MAX_DISPLAY_NAME)
    assert display_name is not None
    auth = body.get("auth")
    if not isinstance(auth, dict):
        raise InvalidInput("auth", "is required: {mode: admin_consent} or {mode: customer_app, ...}")
    if auth.get("mode") is None:
        raise InvalidInput("auth.mode", "is required: admin_consent or customer_app")
    try:
        mode = _enum(auth, "mode", AuthMode, None)
    except InvalidInput as error:
        raise InvalidInput("auth.mode", error.reason) from None
    customer_app = parse_customer_app(auth) if mode is AuthMode.CUSTOMER_APP else None
    if mode is AuthMode.ADMIN_CONSENT:
        extra = sorted(name for name, value in auth.items() if name != "mode" and value is not None)
        if extra:
            raise InvalidInput(f"auth.{extra[0]}", "is not used with admin_consent")
    settings = parse_settings(body.get("settings"))
    return CreateTenant(tenant_id, display_name, mode, customer_app, settings)


def parse_tenant_path(value: str) -> str:
    """The tenant id a path names (`{tid}`), normalised as stored: a GUID or a verified domain."""
    tenant_id = normalise_tenant_id(value) if len(value) <= MAX_TENANT_ID else None
    if tenant_id is None:
        raise InvalidInput("tenant_id", "must be a tenant GUID or a verified domain such as contoso.com")
    return tenant_id


def parse_staff_id(staff_id: str) -> str:
    """A staff id as a path names it: a Table Storage key, so only the characters safe in one."""
    if not STAFF_ID_RE.match(staff_id):
        raise InvalidInput("staff_id", STAFF_ID_CHARS)
    return staff_id


def parse_staff(staff_id: str, body: dict[str, Any]) -> StaffMember:
    parse_staff_id(staff_id)
    email = _string(body, "email", required=False, max_length=MAX_ADDRESS)
    upn = _string(body, "upn", required=False, max_length=MAX_ADDRESS)
    for name, value in (("email", email), ("upn", upn)):
        if value is not None and "@" not in value:
            raise InvalidInput(name, "must be an address like someone@contoso.com")
    if not email and not upn:
        raise InvalidInput("email", "give email or upn (or both) so the staff member can be matched")
    display_name = _string(body, "display_name", required=False, max_length=MAX_DISPLAY_NAME) or ""
    enabled = _bool(body, "enabled", True)
    legacy_ids = body.get("legacy_ids")
    links = parse_legacy_ids([] if legacy_ids is None else legacy_ids)
    return StaffMember(staff_id, email, upn, display_name, enabled, links)


def parse_legacy_ids(value: Any) -> tuple[LegacyLink, ...]:
    """A list of `{appointment_id, ews_id?, ical_uid?}`; a bare string is an EWS item id that is also the
    host's appointment id (as EWS-era integrations usually keyed them)."""
    if not isinstance(value, list):
        raise InvalidInput(
            "legacy_ids", "must be a list of EWS item ids or {appointment_id, ews_id, ical_uid}"
        )
    if len(value) > MAX_LEGACY_IDS:
        raise InvalidInput("legacy_ids", f"must have at most {MAX_LEGACY_IDS} ids")
    links: list[LegacyLink] = []
    for index, item in enumerate(value):
        field = f"legacy_ids[{index}]"
        if isinstance(item, str) and item:
            if len(item) > MAX_LEGACY_ID_LENGTH:
                raise InvalidInput(field, f"must be at most {MAX_LEGACY_ID_LENGTH} characters")
            links.append(LegacyLink(item, ews_id=item))
            continue
        if not isinstance(item, dict):
            raise InvalidInput(field, "must be an EWS item id or {appointment_id, ews_id, ical_uid}")
        appointment_id = _string(
            item, "appointment_id", required=True, max_length=MAX_LEGACY_ID_LENGTH, prefix=field
        )
        ews_id = _string(item, "ews_id", required=False, max_length=MAX_LEGACY_ID_LENGTH, prefix=field)
        ical_uid = _string(item, "ical_uid", required=False, max_length=MAX_LEGACY_ID_LENGTH, prefix=field)
        if not ews_id and not ical_uid:
            raise InvalidInput(f"{field}.ews_id", "give ews_id or ical_uid (or both)")
        assert appointment_id is not None
        links.append(LegacyLink(appointment_id, ews_id, ical_uid))
    stored = json.dumps([[link.appointment_id, link.ews_id, link.ical_uid] for link in links])
    if len(stored) > MAX_LEGACY_JSON:
        raise InvalidInput("legacy_ids", f"must be at most {MAX_LEGACY_JSON} characters together, as JSON")
    return tuple(links)
