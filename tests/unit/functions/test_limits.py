"""Every limit the OpenAPI document states is the one the server enforces: a value just past it is a 400
naming that field, and nothing changes. The document is walked, so a limit added to it is tested here.

Also: a route whose document says a body is required refuses a missing one, naming `body`; a path no route
serves is a JSON 404; bad input never becomes a 500 (the import filter's categories in particular, which
Table Storage used to refuse).
"""

from __future__ import annotations

import base64
import copy
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from functions.openapi import DOCUMENTED_NAMES, OPERATIONS, documented_path, openapi_document
from shared.adapters.tables.tenants import settings_to_json
from shared.domain.tenants import ImportFilterMode
from shared.service.appointment_commands import parse_appointment
from shared.service.commands import parse_create_tenant
from shared.service.errors import InvalidInput
from tests.fakes.directory import FakeOrganisation
from tests.unit.functions.host_api import DIRECTORY, TENANT, HostApi, host_api, snapshot

pytestmark = pytest.mark.unit

APP_ID = "aaaaaaaa-0000-0000-0000-000000000001"
Path = tuple[str | int, ...]
SETTINGS = {"import_filter": {"mode": "categories", "categories": ["Host"]}, "todo_list_name": "Tasks"}
CUSTOMER_APP = {"client_id": APP_ID, "client_secret": "s3cret"}
# A valid body per operation, so that only the field under test is wrong.
BODIES: dict[str, Any] = {
    "createTenant": {
        "tenant_id": "fabrikam.example",
        "display_name": "Fabrikam",
        "auth": {"mode": "customer_app", **CUSTOMER_APP},
        "settings": SETTINGS,
    },
    "updateTenantSettings": SETTINGS,
    "consoleUpdateSettings": SETTINGS,
    "reauthorizeTenant": CUSTOMER_APP,
    "consoleReauthorize": CUSTOMER_APP,
    "consoleSetSwitches": {"staff_ids": ["s1"], "switches": {"video": False}},
    "putStaff": {
        "email": "s9@contoso.example",
        "upn": "s9@contoso.example",
        "display_name": "Staff Nine",
        "legacy_ids": [{"appointment_id": "a-0", "ews_id": "AAMkAD0", "ical_uid": "0400000082"}],
    },
    "putAppointment": {
        "subject": "Intake",
        "body": "Bring the forms.",
        "location": "Room 1",
        "start": "2027-03-01T09:00:00",
        "end": "2027-03-01T10:00:00",
        "time_zone": "Europe/Amsterdam",
        "staff_ids": ["s1", "s2"],
        "customers": [{"name": "Chris Customer", "email": "chris@example.org"}],
        "categories": ["Host"],
        "recurrence": {
            "rrule": "FREQ=WEEKLY;BYDAY=MO;COUNT=6",
            "exdates": ["2027-03-15"],
            "overrides": [
                {
                    "recurrence_id": "2027-03-08",
                    "start": "2027-03-08T11:00:00",
                    "end": "2027-03-08T12:00:00",
                    "subject": "Intake (moved)",
                    "location": "Room 2",
                    "body": "Moved.",
                }
            ],
        },
    },
    "createConsoleLink": {"ttl_minutes": 60},
    "putTask": {
        "staff_id": "s1",
        "title": "Call back",
        "body": "About the quote",
        "due": "2026-03-10",
        "time_zone": "Europe/Amsterdam",
        "categories": ["Sales"],
        "checklist": [{"id": "a", "title": "Price"}],
    },
    "putMail": {
        "from_staff_id": "s1",
        "to": [{"name": "Chris Customer", "address": "chris@example.org"}],
        "cc": [{"name": "Office", "address": "office@example.org"}],
        "bcc": [{"name": "Archive", "address": "archive@contoso.example"}],
        "reply_to": [{"name": "Desk", "address": "desk@contoso.example"}],
        "subject": "Your quote",
        "body": {"content_type": "html", "content": "<p>Attached.</p>"},
        "attachments": [
            {
                "name": "quote.pdf",
                "content_type": "application/pdf",
                "content_base64": "JVBERi0=",
                "content_id": "q1",
                "is_inline": False,
            }
        ],
        "importance": "high",
        "save_to_sent_items": True,
        "headers": {"X-Quote": "4471"},
    },
    "findAvailability": {
        "participants": [{"staff_ids": ["s1", "s2"], "required": 1}],
        "periods": [{"start": "2027-03-01T09:00:00", "end": "2027-03-01T17:00:00"}],
        "duration_minutes": 30,
        "interval_minutes": 30,
        "buffer": {"before_minutes": 5, "after_minutes": 5},
        "time_zone": "Europe/Amsterdam",
        "working_hours": True,
        "max_results": 10,
        "format": "slots",
        "ranking": "least_booked",
    },
}
PATH_VALUES = {
    "tid": TENANT,
    "staff_id": "s1",
    "appointment_id": "a-1",
    "message_id": "m-1",
    "task_id": "t-1",
}
ROUTE_NAMES = {documented: name for name, documented in DOCUMENTED_NAMES.items()}  # tenant_id -> tid


def route_path(route: str, **override: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: override.get(m[1], PATH_VALUES[m[1]]), route)


def field_name(path: Path, root: str = "") -> str:
    name = root
    for part in path:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else part)
    return name


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = openapi_document()["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


OFF_PATTERN = ("   ", "no at sign", "a b")  # the first that misses a documented pattern is sent


def over_string(length: int) -> str:
    """`length` characters shaped like a domain (so that a tenant id fails on its length alone)."""
    return "a" * (length - 4) + ".com"


def limit_cases(schema: dict[str, Any], value: Any, path: Path = ()) -> Iterator[tuple[Path, Any]]:
    """(where, a value just past a limit) for every limit of the schema the base `value` reaches."""
    schema = resolve(schema)
    for alternative in schema.get("oneOf", []) + schema.get("anyOf", []):
        yield from limit_cases(alternative, value, path)
    kinds = schema.get("type", [])
    kinds = {kinds} if isinstance(kinds, str) else set(kinds)
    if "string" in kinds:
        if "maxLength" in schema:
            yield path, over_string(schema["maxLength"] + 1)
        if schema.get("minLength", 0) > 0:
            yield path, ""
        if "pattern" in schema:
            yield path, next(c for c in OFF_PATTERN if not re.search(schema["pattern"], c))
    if "integer" in kinds:
        if "maximum" in schema:
            yield path, schema["maximum"] + 1
        if "minimum" in schema:
            yield path, schema["minimum"] - 1
    if "array" in kinds:
        items = resolve(schema.get("items", {}))
        first = value[0] if isinstance(value, list) and value else None
        if "maxItems" in schema:
            count = schema["maxItems"] + 1
            if items.get("type") == "string":
                yield path, [f"x{n}" for n in range(count)]  # distinct, for uniqueItems
            else:
                yield path, [copy.deepcopy(first if first is not None else "x") for _ in range(count)]
        if schema.get("minItems", 0) > 0:
            yield path, []
        if first is not None:
            yield from limit_cases(items, first, (*path, 0))
    if isinstance(value, dict):
        for name, member in schema.get("properties", {}).items():
            yield from limit_cases(member, value.get(name), (*path, name))


def with_value(body: Any, path: Path, value: Any) -> Any:
    changed = copy.deepcopy(body)
    node = changed
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return changed


def body_cases() -> Iterator[Any]:
    for op in OPERATIONS:
        if op.request is None or op.operation_id not in BODIES:
            continue
        base = BODIES[op.operation_id]
        root = "settings" if op.request == {"$ref": "#/components/schemas/Settings"} else ""
        for path, value in limit_cases(op.request, base):
            field = field_name(path, root)
            yield pytest.param(
                op.method, op.route, with_value(base, path, value), field, id=f"{op.operation_id}:{field}"
            )


def parameter_cases() -> Iterator[Any]:
    document = openapi_document()
    for op in OPERATIONS:
        operation = document["paths"][documented_path(op.route)][op.method.lower()]
        base = BODIES.get(op.operation_id) if op.request is not None and op.body_required else None
        for parameter in operation.get("parameters", []):
            name, where = parameter["name"], parameter["in"]
            for _, value in limit_cases(parameter["schema"], None):
                case_id = f"{op.operation_id}:{name}={str(value)[:12]}"
                if where == "path":
                    in_route = ROUTE_NAMES.get(name, name)
                    path, query = route_path(op.route, **{in_route: str(value)}), {}
                else:
                    path, query = route_path(op.route), {name: str(value)}
                yield pytest.param(op.method, path, query, base, name, id=case_id)


@pytest.fixture
async def api() -> HostApi:
    return await host_api()


@pytest.mark.parametrize(("method", "route", "body", "field"), list(body_cases()))
async def test_a_body_member_past_its_documented_limit_is_a_400_naming_it(
    api: HostApi, method: str, route: str, body: Any, field: str
) -> None:
    before = snapshot(api.world)
    answer = await api.call(method, route_path(route), body)
    assert answer.status == 400, answer.body
    assert answer.error_field == field, answer.json()
    assert snapshot(api.world) == before


@pytest.mark.parametrize(("method", "path", "query", "body", "field"), list(parameter_cases()))
async def test_a_parameter_past_its_documented_limit_is_a_400_naming_it(
    api: HostApi, method: str, path: str, query: dict[str, str], body: Any, field: str
) -> None:
    before = snapshot(api.world)
    answer = await api.call(method, path, body, query=query)
    assert answer.status == 400, answer.body
    assert answer.error_field == field, answer.json()
    assert snapshot(api.world) == before


def test_every_documented_body_has_a_base_body_here() -> None:
    """So the walk above reaches every request schema with limits."""
    walked = {op.operation_id for op in OPERATIONS if op.request is not None and op.operation_id in BODIES}
    limited = {
        op.operation_id
        for op in OPERATIONS
        if op.request is not None and any(limit_cases(op.request, BODIES.get(op.operation_id, {})))
    }
    assert limited <= walked


@pytest.mark.parametrize(
    ("categories", "field"),
    [
        (["x" * 33_000], "settings.import_filter.categories[0]"),
        (["x" * 1_000] * 50, "settings.import_filter.categories[0]"),
        ([f"{n:02}" + "x" * 39 for n in range(50)], "settings.import_filter.categories"),  # 2,050 together
    ],
)
@pytest.mark.parametrize("route", ["v1/tenants/{tid}/settings", "console/tenants/{tid}/settings"])
async def test_an_import_filter_too_large_for_the_tenant_row_is_a_400_not_a_500(
    api: HostApi, route: str, categories: list[str], field: str
) -> None:
    before = snapshot(api.world)
    answer = await api.call(
        "PATCH", route_path(route), {"import_filter": {"mode": "categories", "categories": categories}}
    )
    assert answer.status == 400
    assert answer.error_field == field
    assert snapshot(api.world) == before


async def test_tenant_create_with_too_large_an_import_filter_is_a_400(api: HostApi) -> None:
    body = copy.deepcopy(BODIES["createTenant"])
    body["settings"]["import_filter"]["categories"] = ["x" * 33_000]
    answer = await api.call("POST", "v1/tenants", body)
    assert (answer.status, answer.error_field) == (400, "settings.import_filter.categories[0]")
    assert "fabrikam.example" not in api.world.tenants.rows


async def test_the_largest_settings_accepted_are_kept_and_fit_one_table_property(api: HostApi) -> None:
    categories = [f"{n:02}" + "\U0001f4c5" * 38 for n in range(50)]  # 2,000 characters, astral ones
    todo = "\U0001f4c5" * 255
    answer = await api.call(
        "PATCH",
        route_path("v1/tenants/{tid}/settings"),
        {"import_filter": {"mode": "categories", "categories": categories}, "todo_list_name": todo},
    )
    assert answer.status == 200, answer.body
    settings = api.world.tenants.rows[TENANT].settings
    assert (settings.import_filter.mode, settings.import_filter.categories) == (
        ImportFilterMode.CATEGORIES,
        tuple(categories),
    )
    assert settings.todo_list_name == todo
    stored = settings_to_json(settings)  # as the tenant row keeps it: one string property
    assert len(stored.encode("utf-16-le")) <= 64 * 1024


@pytest.mark.parametrize(
    ("method", "route"),
    [(op.method, op.route) for op in OPERATIONS if op.request is not None and op.body_required],
)
async def test_a_route_that_requires_a_body_refuses_a_missing_one(
    api: HostApi, method: str, route: str
) -> None:
    before = snapshot(api.world)
    answer = await api.call(method, route_path(route))
    assert answer.status == 400
    assert answer.error_field == "body"
    assert snapshot(api.world) == before


@pytest.mark.parametrize(
    ("method", "route"),
    [(op.method, op.route) for op in OPERATIONS if op.request is not None and not op.body_required],
)
async def test_a_route_whose_body_is_optional_takes_none(api: HostApi, method: str, route: str) -> None:
    handshake = {"validationToken": "token"} if route.startswith("graph/") else {}  # Graph's, bodiless
    answer = await api.call(method, route_path(route), query=handshake)
    assert answer.status < 500
    assert answer.status != 400 or answer.error_field != "body"


@pytest.mark.parametrize(
    "path", ["v2/tenants", "v1/tenant", "v1/tenants/contoso.example/nothing", "", "x/y/z"]
)
@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
async def test_an_unmatched_path_answers_a_json_404(api: HostApi, method: str, path: str) -> None:
    answer = await api.call(method, path)
    assert answer.status == 404
    assert answer.mimetype == "application/json"
    assert answer.json()["error"]["code"] == "not_found"


async def test_a_known_path_with_another_method_answers_a_json_405(api: HostApi) -> None:
    answer = await api.call("PATCH", "v1/tenants")
    assert answer.status == 405
    assert answer.headers["Allow"] == "GET, POST"
    assert answer.json()["error"]["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    ("method", "path", "field", "message"),
    [
        ("GET", "v1/tenants/fabrikam.example", "tenant_id", "There is no tenant fabrikam.example."),
        ("DELETE", "v1/tenants/contoso.example/staff/s9", "staff_id", "There is no staff member s9."),
        ("POST", "v1/tenants/contoso.example/users/s9/resync", "staff_id", "There is no staff member s9."),
        (
            "GET",
            "v1/tenants/contoso.example/appointments/a-9",
            "appointment_id",
            "There is no appointment a-9.",
        ),
    ],
)
async def test_not_found_reads_as_a_sentence_naming_the_field(
    api: HostApi, method: str, path: str, field: str, message: str
) -> None:
    answer = await api.call(method, path)
    assert answer.status == 404
    assert answer.json()["error"] == {"code": "not_found", "field": field, "message": message}


async def test_a_staff_put_when_microsoft_365_refuses_the_tenant_is_a_409_not_a_500(api: HostApi) -> None:
    """Consent revoked (or the app removed) before the connector noticed: matching the staff member fails
    with the tenant's access refused, which the edge answers as a conflict with the tenant's state."""
    api.world.directory.organisations[DIRECTORY].consented = False
    before = snapshot(api.world)
    answer = await api.call("PUT", route_path("v1/tenants/{tid}/staff/{staff_id}"), BODIES["putStaff"])
    assert answer.status == 409, answer.body
    assert answer.json()["error"]["field"] == "tenant_id"
    assert "reauthorize" in answer.json()["error"]["message"]
    assert snapshot(api.world) == before


@pytest.mark.parametrize(
    ("method", "route", "body"),
    [
        ("POST", "v1/tenants/{tid}/console-links", {"ttl_minutes": None}),
        ("POST", "v1/tenants/{tid}/resync", {"only_failed": None}),
        ("POST", "v1/tenants/{tid}/users/{staff_id}/resync", {"force": None}),
        ("PATCH", "v1/tenants/{tid}/settings", {"window_days_back": None, "import_filter": None}),
        ("PATCH", "v1/tenants/{tid}/settings", {"import_filter": {"mode": None, "categories": None}}),
        (
            "PUT",
            "v1/tenants/{tid}/staff/{staff_id}",
            {"email": "s1@contoso.example", "enabled": None, "legacy_ids": None},
        ),
    ],
)
async def test_null_is_the_same_as_an_absent_member(api: HostApi, method: str, route: str, body: Any) -> None:
    answer = await api.call(method, route_path(route), body)
    assert answer.status < 300, answer.body


async def test_null_members_of_an_appointment_are_absent_ones(api: HostApi) -> None:
    base = {k: v for k, v in BODIES["putAppointment"].items() if k != "recurrence"}
    nulls = dict.fromkeys(
        (
            "body",
            "location",
            "time_zone",
            "all_day",
            "customers",
            "recurrence",
            "show_as",
            "sensitivity",
            "categories",
            "video",
            "body_type",
        )
    )
    body = {**base, **nulls, "start": "2027-03-01T09:00:00+01:00", "end": "2027-03-01T10:00:00+01:00"}
    answer = await api.call("PUT", route_path("v1/tenants/{tid}/appointments/{appointment_id}"), body)
    assert answer.status == 202, answer.body
    assert answer.json()["appointment"]["show_as"] == "busy"


@pytest.mark.parametrize(
    ("method", "route"),
    [
        ("PATCH", "v1/tenants/{tid}/settings"),
        ("POST", "v1/tenants/{tid}/resync"),
        ("PATCH", "console/tenants/{tid}/settings"),
        ("POST", "graph/notifications"),
        ("POST", "graph/lifecycle"),
    ],
)
async def test_a_body_nested_too_deeply_for_the_json_parser_is_a_400_not_a_500(
    api: HostApi, method: str, route: str
) -> None:
    nested = b'{"import_filter": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    before = snapshot(api.world)
    answer = await api.call(method, route_path(route), raw=nested)
    assert (answer.status, answer.error_field) == (400, "body")
    assert snapshot(api.world) == before


async def test_a_users_cursor_nested_too_deeply_is_a_400_not_a_500(api: HostApi) -> None:
    cursor = base64.urlsafe_b64encode(b"[" * 5_000 + b"]" * 5_000).decode()
    answer = await api.call("GET", route_path("v1/tenants/{tid}/users"), query={"cursor": cursor})
    assert (answer.status, answer.error_field) == (400, "cursor")


@pytest.mark.parametrize(
    ("method", "route", "body", "field"),
    [
        ("POST", "v1/tenants", {**BODIES["createTenant"], "display_name": "Org \ud800"}, "display_name"),
        ("PATCH", "v1/tenants/{tid}/settings", {"todo_list_name": "\udc00 Tasks"}, "settings.todo_list_name"),
        (
            "PATCH",
            "console/tenants/{tid}/settings",
            {"import_filter": {"mode": "categories", "categories": ["ok", "x\ud800"]}},
            "settings.import_filter.categories[1]",
        ),
        ("PUT", "v1/tenants/{tid}/staff/{staff_id}", {"email": "s1@contoso.example", "upn\ud800": 1}, "body"),
        (
            "PUT",
            "v1/tenants/{tid}/appointments/{appointment_id}",
            {**BODIES["putAppointment"], "customers": [{"name": "Chris \ud83d"}]},
            "customers[0].name",
        ),
    ],
)
async def test_text_with_a_lone_surrogate_is_a_400_naming_the_member(
    api: HostApi, method: str, route: str, body: Any, field: str
) -> None:
    before = snapshot(api.world)
    answer = await api.call(method, route_path(route), raw=json.dumps(body).encode())
    assert (answer.status, answer.error_field) == (400, field), answer.body
    assert snapshot(api.world) == before


async def test_reauthorize_names_the_body_member_of_a_refused_secret_not_the_create_body_path(
    api: HostApi,
) -> None:
    """POST …/reauthorize takes `client_secret` at the top of its body; a refusal names that, not the
    `auth.client_secret` of a tenant's create."""
    fabrikam = "2f0e4e64-0c1b-4bb9-9d1d-6b9f6f0d5e11"
    api.world.directory.add(FakeOrganisation(fabrikam, {"fabrikam.example"}, apps={APP_ID: "s3cret"}))
    created = await api.call("POST", "v1/tenants", {**BODIES["createTenant"], "settings": None})
    assert created.status == 201, created.body
    reauthorize = "v1/tenants/fabrikam.example/reauthorize"
    wrong = await api.call("POST", reauthorize, {"client_id": APP_ID, "client_secret": "wrong"})
    assert (wrong.status, wrong.error_field) == (422, "client_secret")
    past = {
        "client_id": APP_ID,
        "client_secret": "s3cret",
        "client_secret_expires_at": "2020-01-01T00:00:00Z",
    }
    expired = await api.call("POST", reauthorize, past)
    assert (expired.status, expired.error_field) == (422, "client_secret_expires_at")


@pytest.mark.parametrize(
    ("start", "end", "zone"),
    [
        ("0001-01-01T00:00:00", "0001-01-01T01:00:00", "Asia/Kolkata"),  # before UTC's year 1 once converted
        ("0001-01-01T00:00:00+05:00", "0001-01-01T01:00:00+05:00", None),
        ("9999-12-31T22:00:00-05:00", "9999-12-31T23:00:00-05:00", None),
        ("1899-12-31T10:00:00", "1899-12-31T11:00:00", "Europe/Amsterdam"),
        ("3000-01-01T10:00:00", "3000-01-01T11:00:00", "Europe/Amsterdam"),
    ],
)
def test_an_appointment_on_a_date_out_of_range_is_a_400_naming_start(
    start: str, end: str, zone: str | None
) -> None:
    body: dict[str, object] = {"subject": "Intake", "start": start, "end": end, "staff_ids": ["s1"]}
    if zone:
        body["time_zone"] = zone
    with pytest.raises(InvalidInput) as refused:
        parse_appointment("a-1", body)
    assert refused.value.field == "start"


def test_a_customer_secret_expiry_out_of_range_is_a_400_naming_it() -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_create_tenant(
            {
                "tenant_id": "contoso.example",
                "display_name": "Contoso",
                "auth": {
                    "mode": "customer_app",
                    "client_id": "11111111-1111-1111-1111-111111111111",
                    "client_secret": "x" * 20,
                    "client_secret_expires_at": "0001-01-01T00:00:00+05:00",
                },
            }
        )
    assert refused.value.field == "auth.client_secret_expires_at"
