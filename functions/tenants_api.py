"""Host API: tenants (connect, state, settings, reauthorize, disconnect) and their staff and users."""

from __future__ import annotations

import azure.functions as func

from functions.http import (
    JSON_TYPE,
    handles_errors,
    json_response,
    read_json_object,
    read_optional_json_object,
    read_settings_patch,
)
from functions.views import (
    dead_letter_json,
    hold_json,
    message_json,
    message_page_json,
    tenant_json,
    user_detail_json,
    user_json,
    user_page_json,
)
from shared.bootstrap import container
from shared.domain.teams import TeamsStatus
from shared.domain.users import MatchStatus, SyncState
from shared.service import (
    deliveries,
    feed_retention,
    messages,
    sync,
    tenant_consent,
    tenant_disconnect,
    tenants,
    user_detail,
    users,
)
from shared.service.commands import (
    parse_create_tenant,
    parse_flag,
    parse_reauthorize,
    parse_staff_id,
    parse_staff_put,
    parse_tenant_path,
)
from shared.service.errors import InvalidInput
from shared.service.records import UserQuery
from shared.service.tenant_settings import update_settings
from shared.service.user_queries import parse_switch_filter

bp = func.Blueprint()
KEY = func.AuthLevel.FUNCTION


@bp.function_name("tenants")
@bp.route(route="v1/tenants", methods=["GET", "POST"], auth_level=KEY)
@handles_errors
async def tenants_collection(req: func.HttpRequest) -> func.HttpResponse:
    services = container().services
    now = services.clock.now()
    if req.method == "POST":
        connection = await tenant_consent.create_tenant(services, parse_create_tenant(read_json_object(req)))
        progress = await tenants.tenant_progress(services, connection.tenant)
        return json_response(tenant_json(connection.tenant, now, progress, connection.consent_url), 201)
    page = await tenants.tenants_page(
        services,
        _int_param(req, "page_size", tenants.TENANT_PAGE, 1, tenants.MAX_TENANT_PAGE),
        req.params.get("cursor") or None,
    )
    listed = [tenant_json(t, now, progress) for t, progress in page.tenants]
    return json_response({"value": listed, "next_cursor": page.next_cursor, "total": page.total})


@bp.function_name("tenant")
@bp.route(route="v1/tenants/{tid}", methods=["GET", "DELETE"], auth_level=KEY)
@handles_errors
async def tenant_item(req: func.HttpRequest) -> func.HttpResponse:
    services = container().services
    tid = _tenant_id(req)
    if req.method == "DELETE":
        tenant = await tenant_disconnect.begin_disconnect(services, tid)
        return json_response(tenant_json(tenant, services.clock.now()), 202)
    tenant = await tenants.get_tenant(services, tid)
    progress = await tenants.tenant_progress(services, tenant)
    return json_response(tenant_json(tenant, services.clock.now(), progress))


@bp.function_name("tenant_settings")
@bp.route(route="v1/tenants/{tid}/settings", methods=["PATCH"], auth_level=KEY)
@handles_errors
async def tenant_settings(req: func.HttpRequest) -> func.HttpResponse:
    services = container().services
    updated = await update_settings(services, _tenant_id(req), read_settings_patch(req))
    progress = await tenants.tenant_progress(services, updated)  # the state it shows
    return json_response(tenant_json(updated, services.clock.now(), progress))


@bp.function_name("tenant_reauthorize")
@bp.route(route="v1/tenants/{tid}/reauthorize", methods=["POST"], auth_level=KEY)
@handles_errors
async def tenant_reauthorize(req: func.HttpRequest) -> func.HttpResponse:
    services = container().services
    credential = parse_reauthorize(read_optional_json_object(req))
    try:
        connection = await tenant_consent.reauthorize(services, _tenant_id(req), credential)
    except InvalidInput as error:  # the service names the secret as a create nests it (auth.…)
        raise InvalidInput(error.field.removeprefix("auth."), error.reason, status=error.status) from None
    progress = await tenants.tenant_progress(services, connection.tenant)  # the state it shows
    return json_response(
        tenant_json(connection.tenant, services.clock.now(), progress, connection.consent_url)
    )


@bp.function_name("staff")
@bp.route(route="v1/tenants/{tid}/staff/{staff_id}", methods=["PUT", "DELETE"], auth_level=KEY)
@handles_errors
async def staff_item(req: func.HttpRequest) -> func.HttpResponse:
    services = container().services
    tid, staff_id = _tenant_id(req), parse_staff_id(str(req.route_params["staff_id"]))
    if req.method == "DELETE":
        await users.delete_staff(services, tid, staff_id)
        return func.HttpResponse(status_code=204)
    staff, switches = parse_staff_put(staff_id, read_json_object(req))
    record = await users.put_staff(services, tid, staff, switches)
    return json_response(user_json(record))


@bp.function_name("users")
@bp.route(route="v1/tenants/{tid}/users", methods=["GET"], auth_level=KEY)
@handles_errors
async def users_list(req: func.HttpRequest) -> func.HttpResponse:
    page = await users.list_users(container().services, _tenant_id(req), user_query(req))
    return json_response(user_page_json(page))


@bp.function_name("tenant_rematch")
@bp.route(route="v1/tenants/{tid}/rematch", methods=["POST"], auth_level=KEY)
@handles_errors
async def tenant_rematch(req: func.HttpRequest) -> func.HttpResponse:
    await users.request_rematch(container().services, _tenant_id(req))
    return json_response({"status": "queued"}, 202)


@bp.function_name("user_resync")
@bp.route(route="v1/tenants/{tid}/users/{staff_id}/resync", methods=["POST"], auth_level=KEY)
@handles_errors
async def user_resync(req: func.HttpRequest) -> func.HttpResponse:
    force = parse_flag(read_optional_json_object(req), "force")
    staff_id = parse_staff_id(str(req.route_params["staff_id"]))
    record = await sync.request_user_resync(container().services, _tenant_id(req), staff_id, force=force)
    return json_response({"status": "queued", "user": user_json(record)}, 202)


@bp.function_name("tenant_resync")
@bp.route(route="v1/tenants/{tid}/resync", methods=["POST"], auth_level=KEY)
@handles_errors
async def tenant_resync(req: func.HttpRequest) -> func.HttpResponse:
    only_failed = parse_flag(read_optional_json_object(req), "only_failed")
    queued = await sync.request_tenant_resync(container().services, _tenant_id(req), only_failed=only_failed)
    return json_response({"status": "queued", "users": queued}, 202)


@bp.function_name("dead_letters")
@bp.route(route="v1/tenants/{tid}/dead-letters", methods=["GET"], auth_level=KEY)
@handles_errors
async def dead_letters(req: func.HttpRequest) -> func.HttpResponse:
    services = container().services
    tenant = await tenants.get_tenant(services, _tenant_id(req))
    letters = await deliveries.list_dead_letters(services, tenant.tenant_id)
    return json_response({"value": [dead_letter_json(d) for d in letters]})


@bp.function_name("dead_letters_redeliver")
@bp.route(route="v1/tenants/{tid}/dead-letters/redeliver", methods=["POST"], auth_level=KEY)
@handles_errors
async def dead_letters_redeliver(req: func.HttpRequest) -> func.HttpResponse:
    services = container().services
    tenant = await tenants.get_tenant(services, _tenant_id(req))
    queued = await deliveries.redeliver_dead_letters(services, tenant.tenant_id)
    return json_response({"status": "queued", "deliveries": queued}, 202)


@bp.function_name("user_item")
@bp.route(route="v1/tenants/{tid}/users/{staff_id}", methods=["GET"], auth_level=KEY)
@handles_errors
async def user_item(req: func.HttpRequest) -> func.HttpResponse:
    staff_id = parse_staff_id(str(req.route_params["staff_id"]))
    detail = await user_detail.user_detail(container().services, _tenant_id(req), staff_id)
    return json_response(user_detail_json(detail))


@bp.function_name("user_subscription")
@bp.route(route="v1/tenants/{tid}/users/{staff_id}/subscription", methods=["DELETE"], auth_level=KEY)
@handles_errors
async def user_subscription(req: func.HttpRequest) -> func.HttpResponse:
    staff_id = parse_staff_id(str(req.route_params["staff_id"]))
    record = await user_detail.delete_user_subscription(container().services, _tenant_id(req), staff_id)
    return json_response(user_json(record))


@bp.function_name("user_rematch")
@bp.route(route="v1/tenants/{tid}/users/{staff_id}/rematch", methods=["POST"], auth_level=KEY)
@handles_errors
async def user_rematch(req: func.HttpRequest) -> func.HttpResponse:
    staff_id = parse_staff_id(str(req.route_params["staff_id"]))
    record = await user_detail.rematch_user(container().services, _tenant_id(req), staff_id)
    return json_response(user_json(record))


@bp.function_name("messages")
@bp.route(route="v1/tenants/{tid}/messages", methods=["GET"], auth_level=KEY)
@handles_errors
async def messages_list(req: func.HttpRequest) -> func.HttpResponse:
    services = container().services
    tid = _tenant_id(req)
    query = messages.parse_message_query(req.params, services.clock.now())
    return json_response(message_page_json(await messages.list_messages(services, tid, query)))


@bp.function_name("message_item")
@bp.route(route="v1/tenants/{tid}/messages/{monitor_id}", methods=["GET"], auth_level=KEY)
@handles_errors
async def message_item(req: func.HttpRequest) -> func.HttpResponse:
    message_id = str(req.route_params["monitor_id"])
    found = await messages.get_message(container().services, _tenant_id(req), message_id)
    return json_response(message_json(found))


@bp.function_name("message_retry")
@bp.route(route="v1/tenants/{tid}/messages/{monitor_id}/retry", methods=["POST"], auth_level=KEY)
@handles_errors
async def message_retry(req: func.HttpRequest) -> func.HttpResponse:
    message_id = str(req.route_params["monitor_id"])
    queued = await messages.retry_message(container().services, _tenant_id(req), message_id)
    return json_response({"status": "queued", "queued": queued}, 202)


@bp.function_name("delivery_state")
@bp.route(route="v1/tenants/{tid}/delivery", methods=["GET"], auth_level=KEY)
@handles_errors
async def delivery_state(req: func.HttpRequest) -> func.HttpResponse:
    services = container().services
    tenant = await tenants.get_tenant(services, _tenant_id(req))
    return json_response(hold_json(await deliveries.hold_state(services, tenant)))


@bp.function_name("delivery_hold")
@bp.route(route="v1/tenants/{tid}/delivery/hold", methods=["POST"], auth_level=KEY)
@handles_errors
async def delivery_hold(req: func.HttpRequest) -> func.HttpResponse:
    services = container().services
    tenant = await deliveries.hold_delivery(services, _tenant_id(req))
    return json_response(hold_json(await deliveries.hold_state(services, tenant)))


@bp.function_name("delivery_release")
@bp.route(route="v1/tenants/{tid}/delivery/release", methods=["POST"], auth_level=KEY)
@handles_errors
async def delivery_release(req: func.HttpRequest) -> func.HttpResponse:
    _, queued = await deliveries.release_delivery(container().services, _tenant_id(req))
    return json_response({"status": "released", "queued_changes": queued}, 202)


@bp.function_name("changes")
@bp.route(route="v1/tenants/{tid}/changes", methods=["GET"], auth_level=KEY)
@handles_errors
async def changes_feed(req: func.HttpRequest) -> func.HttpResponse:
    services = container().services
    after = _int_param(req, "cursor", 0, 0, 10**15)
    limit = _int_param(req, "limit", 100, 1, 1000)
    page = await feed_retention.read_changes(services, _tenant_id(req), after, limit)
    value = ",".join(text for _, text in page.changes)  # passed on as stored
    body = f'{{"value":[{value}],"cursor":"{page.cursor}","retention_days":{page.retention_days}}}'
    return func.HttpResponse(body, status_code=200, mimetype=JSON_TYPE, charset="utf-8")


def _tenant_id(req: func.HttpRequest) -> str:
    return parse_tenant_path(str(req.route_params["tid"]))


def _int_param(req: func.HttpRequest, name: str, default: int, low: int, high: int) -> int:
    raw = req.params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(name, "must be an integer") from None
    if not low <= value <= high:
        raise InvalidInput(name, f"must be between {low} and {high}")
    return value


def _choice(req: func.HttpRequest, name: str, allowed: set[str]) -> str | None:
    value = req.params.get(name) or None
    if value is not None and value not in allowed:
        raise InvalidInput(name, f"must be one of: {', '.join(sorted(allowed))}")
    return value


def user_query(req: func.HttpRequest) -> UserQuery:
    sort = req.params.get("sort") or "display_name"
    descending = sort.startswith("-")
    return UserQuery(
        match=_choice(req, "match", {m.value for m in MatchStatus}),
        state=_choice(req, "state", {s.value for s in SyncState}),
        teams=_choice(req, "teams", {t.value for t in TeamsStatus}),
        switches=parse_switch_filter(req.params.get("switch")),
        search=req.params.get("q") or None,
        sort=sort.lstrip("-"),
        descending=descending,
        page_size=_int_param(req, "page_size", 50, 1, 500),
        cursor=req.params.get("cursor") or None,
    )
