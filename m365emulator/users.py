"""Graph users (contract §2): list with `$filter` / `$select` / `$top` / `$orderby` / paging, get by id
or UPN. Mailbox settings (time zone, working hours) are in `mailbox_settings.py`."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web

from m365emulator.directory import User
from m365emulator.errors import GraphError
from m365emulator.graph import (
    DIRECTORY_DENIED,
    emulator_of,
    require_role,
    respond,
)
from m365emulator.odata import (
    apply_select,
    decode_token,
    encode_token,
    page_size,
    parse_filter,
    select_fields,
)

ROLES = ("User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All")
DEFAULT_PROPERTIES = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
)
KNOWN = set(User("", "", "", "", None).graph_json())
FILTERABLE = {
    "id",
    "mail",
    "userPrincipalName",
    "proxyAddresses",
    "accountEnabled",
    "displayName",
    "givenName",
    "surname",
    "jobTitle",
    "department",
}


def _selected(request: web.Request) -> list[str] | None:
    fields = select_fields(dict(request.query))
    if fields:
        known = {k.lower() for k in KNOWN}
        for f in fields:
            if f.lower() not in known:
                raise GraphError(
                    400,
                    "Request_BadRequest",
                    f"Could not find a property named '{f}' on type 'microsoft.graph.user'.",
                )
    return fields


def _not_found(ref: str) -> GraphError:
    return GraphError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{ref}' does not exist or one of its queried reference-property objects are not present.",
    )


async def list_users(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    claims = require_role(request, ROLES, DIRECTORY_DENIED)
    query = dict(request.query)
    fields = _selected(request)
    users = emu.directory.users(claims.tenant_id)
    advanced = request.headers.get("ConsistencyLevel", "").lower() == "eventual"
    raw_filter = query.get("$filter")
    orderby = query.get("$orderby")
    # Without $filter or $orderby only the page is serialised: O(page), not O(users).
    items: list[Any] = [u.graph_json() for u in users] if raw_filter or orderby else users
    if raw_filter:
        if "endswith(" in raw_filter.lower() and not advanced:
            raise GraphError(
                400,
                "Request_UnsupportedQuery",
                "Operator 'endsWith' is not supported because the 'ConsistencyLevel:eventual' header "
                "is missing.",
            )
        pred = parse_filter(raw_filter, FILTERABLE)
        items = [i for i in items if pred(i)]
    if orderby:
        name, _, direction = orderby.partition(" ")
        if name not in ("displayName", "userPrincipalName"):
            raise GraphError(400, "Request_UnsupportedQuery", f"Sorting not supported for '{name}'.")
        items.sort(key=lambda i: (i.get(name) or "").lower(), reverse=direction.strip().lower() == "desc")
    size = page_size(query, request["prefer"], default=100, maximum=999)
    offset = 0
    if query.get("$skiptoken"):
        state = decode_token(query["$skiptoken"])
        if state is None:
            raise GraphError(400, "Request_BadRequest", "Invalid $skiptoken.")
        offset = int(state.get("o", 0))
    page = items[offset : offset + size]
    out: dict[str, Any] = {"@odata.context": f"{emu.graph_url}/$metadata#users"}
    if query.get("$count", "").lower() == "true":
        if not advanced:
            raise GraphError(
                400,
                "Request_BadRequest",
                "$count is not supported without the 'ConsistencyLevel:eventual' header.",
            )
        if offset == 0:
            out["@odata.count"] = len(items)
    if offset + size < len(items):
        keep = {k: v for k, v in query.items() if k in ("$filter", "$select", "$orderby")}
        keep["$top"] = str(size)
        keep["$skiptoken"] = encode_token({"o": offset + size})
        out["@odata.nextLink"] = f"{emu.graph_url}/users?{urlencode(keep, quote_via=quote, safe=',$()')}"
    page_json = [i if isinstance(i, dict) else i.graph_json() for i in page]
    out["value"] = [apply_select(i, fields, DEFAULT_PROPERTIES) for i in page_json]
    return respond(out)


async def get_user(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    claims = require_role(request, ROLES, DIRECTORY_DENIED)
    ref = request.match_info["user"]
    user = emu.directory.user(claims.tenant_id, ref)
    if user is None:
        raise _not_found(ref)
    fields = _selected(request)
    body = {"@odata.context": f"{emu.graph_url}/$metadata#users/$entity"}
    body.update(apply_select(user.graph_json(), fields, DEFAULT_PROPERTIES))
    return respond(body)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1.0/users", list_users)
    app.router.add_get("/v1.0/users/{user}", get_user)
