"""Typed commands parsed from request bodies; every rejection names the field and the reason.

Two rules hold for every field: a JSON `null` is the same as leaving the field out (a default, or on a
PATCH the current value; a required field is then missing), and a rejection names the field by its path
in the request: `settings.import_filter.categories[3]`, `legacy_ids[0].ews_id`. The bodies are the
pydantic models of `shared/service/bodies.py` (which also generate their OpenAPI components); the parsers
here turn them into the domain's records and import the models when first called, so that pydantic is
not imported at the function app's cold start. The limits are the constants here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from shared.domain.tenants import (
    AuthMode,
    TenantSettings,
    normalise_tenant_id,
)
from shared.domain.users import LegacyLink, StaffMember
from shared.service.errors import InvalidInput
from shared.service.limits import (
    MAX_TENANT_ID,
    STAFF_ID_CHARS,
    STAFF_ID_RE,
)

if TYPE_CHECKING:
    from shared.service import bodies


def parse_flag(body: dict[str, Any], name: Literal["force", "only_failed"]) -> bool:
    """The optional boolean of a resync body, through its model: `force` (a user's resync,
    `bodies.UserResync`) or `only_failed` (a tenant's, `bodies.TenantResync`)."""
    from shared.service.bodies import TenantResync, UserResync, parse

    if name == "force":
        return parse(UserResync, body).force
    return parse(TenantResync, body).only_failed


def parse_settings(
    body: Any, base: TenantSettings | None = None, *, prefix: str = "settings"
) -> TenantSettings:
    """Settings from JSON; absent fields keep `base` (so PATCH and create share one parser)."""
    from shared.service.bodies import Settings, parse  # pydantic: not at the app's cold start

    base = base or TenantSettings()
    if body is None:
        return base
    return parse(Settings, body, prefix).applied_to(base)


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
    from shared.service.bodies import CustomerSecret, parse

    return _credential(parse(CustomerSecret, auth, prefix))


def parse_reauthorize(
    body: dict[str, Any], known_client_id: str | None = None
) -> CustomerAppCredential | None:
    """A reauthorize body's new secret for the customer's app (its client id defaults to the one on
    record), or None when it brings no secret (admin consent: a new consent link)."""
    from shared.service.bodies import Reauthorize, parse

    given = parse(Reauthorize, body)
    if given.client_secret is None:
        return None
    client_id = given.client_id or known_client_id
    if client_id is None:
        raise InvalidInput("client_id", "is required")
    return CustomerAppCredential(client_id, given.client_secret, given.client_secret_expires_at)


def _credential(body: bodies.CustomerSecret) -> CustomerAppCredential:
    return CustomerAppCredential(body.client_id, body.client_secret, body.client_secret_expires_at)


def parse_create_tenant(body: dict[str, Any]) -> CreateTenant:
    from shared.service.bodies import CustomerAppAuth, TenantCreate, parse

    given = parse(TenantCreate, body)
    auth = given.auth
    customer_app = _credential(auth) if isinstance(auth, CustomerAppAuth) else None
    return CreateTenant(
        given.tenant_id,
        given.display_name,
        auth.mode,
        customer_app,
        given.settings.applied_to(TenantSettings()),
    )


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
    """The staff member a PUT describes, a new member's switches (the defaults, with those given)."""
    return parse_staff_put(staff_id, body)[0]


def parse_staff_put(staff_id: str, body: dict[str, Any]) -> tuple[StaffMember, dict[str, bool]]:
    """The staff member a PUT describes, and the switches it sets (the others keep their value)."""
    from shared.service.bodies import Staff, parse

    parse_staff_id(staff_id)
    given = parse(Staff, body)
    links = tuple(link.record() for link in given.legacy_ids)
    staff = StaffMember(
        staff_id,
        given.email,
        given.upn,
        given.display_name,
        given.enabled,
        links,
        given.switches.record(),
        given.todo_list_name,
    )
    return staff, given.switches.changes()


def parse_switches_update(body: dict[str, Any]) -> tuple[list[str], dict[str, bool]]:
    """The staff members and the switches of a mass update."""
    from shared.service.bodies import SwitchesUpdate, parse

    given = parse(SwitchesUpdate, body)
    return list(dict.fromkeys(given.staff_ids)), given.switches.changes()


def parse_legacy_ids(value: Any) -> tuple[LegacyLink, ...]:
    """A list of `{appointment_id, ews_id?, ical_uid?}`; a bare string is an EWS item id that is also the
    host's appointment id (as EWS-era integrations usually keyed them)."""
    from shared.service import bodies

    return tuple(link.record() for link in bodies.parse_legacy_ids(value))
