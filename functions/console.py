"""The admin console: console links (host API, function key), the page and its JSON API.

The page and `console/tenants/{tid}/...` are anonymous at the Functions level: the customer's admin has no
function key. Each checks the console link's token itself (the page: `?token=`; the JSON API:
`Authorization: Bearer`), before anything is read. A function key is not accepted on these routes: on
Azure an anonymous function cannot check one against the host's keys, so the host app (or an operator
with a key) issues a link instead.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final

import azure.functions as func

from functions.http import (
    Endpoint,
    Handler,
    error_response,
    handles_errors,
    json_response,
    read_json_object,
    read_optional_json_object,
    read_settings_patch,
)
from functions.tenants_api import user_query
from functions.views import (
    dead_letter_json,
    hold_json,
    iso,
    message_json,
    message_page_json,
    poison_json,
    poison_list_json,
    tenant_json,
    user_detail_json,
    user_json,
    user_page_json,
)
from shared.bootstrap import container
from shared.service import (
    console,
    deliveries,
    messages,
    poison,
    sync,
    tenant_disconnect,
    tenant_settings,
    tenants,
    user_detail,
    users,
)
from shared.service.commands import parse_flag, parse_staff_id, parse_switches_update, parse_tenant_path
from shared.service.context import Services
from shared.service.errors import ConsoleAccessDenied, InvalidInput

bp = func.Blueprint()
ANON = func.AuthLevel.ANONYMOUS
PAGE_FILE: Final = Path(__file__).with_name("console_page.html")
NO_STORE: Final = {"Cache-Control": "no-store"}


@bp.function_name("console_links")
@bp.route(route="v1/tenants/{tid}/console-links", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@handles_errors
async def console_links(req: func.HttpRequest) -> func.HttpResponse:
    body = read_optional_json_object(req)
    link = await console.issue_link(container().services, _tenant_id(req), console.parse_ttl(body))
    return json_response({"url": link.url, "expires_at": iso(link.expires_at)}, 201, NO_STORE)


@bp.function_name("console")
@bp.route(route="console", methods=["GET"], auth_level=ANON)
@handles_errors
async def console_page(req: func.HttpRequest) -> func.HttpResponse:
    try:
        grant = await console.authorize(container().services, req.params.get("token"))
    except ConsoleAccessDenied as denied:
        return _html(refusal_page(denied), denied.status, "default-src 'none'; style-src 'unsafe-inline'")
    page = console_template()
    return _html(page.render(grant.tenant_id, container().services.config.client_id), 200, page.policy)


def console_api(handler: Handler) -> Endpoint:
    """`handles_errors`, plus a refused console token as 401/403 JSON; never cached."""
    inner = handles_errors(handler)

    async def wrapper(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
        try:
            response = await inner(req, context)
        except ConsoleAccessDenied as denied:
            response = error_response(denied.status, denied.code, denied.message)
            if denied.status == 401:
                response.headers["WWW-Authenticate"] = f'Bearer error="{denied.code}"'
        response.headers["Cache-Control"] = "no-store"
        return response

    # Like handles_errors: the worker reads the wrapper's own signature (req, context), so no __wrapped__.
    functools.update_wrapper(
        wrapper, inner, assigned=("__module__", "__name__", "__qualname__", "__doc__"), updated=()
    )
    vars(wrapper).pop("__wrapped__", None)
    return wrapper


@bp.function_name("console_tenant")
@bp.route(route="console/tenants/{tid}", methods=["GET", "DELETE"], auth_level=ANON)
@console_api
async def console_tenant(req: func.HttpRequest) -> func.HttpResponse:
    services, tid = await _authorized(req)
    now = services.clock.now()
    if req.method == "DELETE":
        return json_response(tenant_json(await tenant_disconnect.begin_disconnect(services, tid), now), 202)
    view = await console.overview(services, tid)
    body = tenant_json(view.tenant, now, view.progress)
    return json_response({**body, "dead_deliveries": view.dead_deliveries})


@bp.function_name("console_users")
@bp.route(route="console/tenants/{tid}/users", methods=["GET"], auth_level=ANON)
@console_api
async def console_users(req: func.HttpRequest) -> func.HttpResponse:
    services, tid = await _authorized(req)
    page = await users.list_users(services, tid, user_query(req), kept=True)
    return json_response(user_page_json(page))


@bp.function_name("console_switches")
@bp.route(route="console/tenants/{tid}/users/switches", methods=["PATCH"], auth_level=ANON)
@console_api
async def console_switches(req: func.HttpRequest) -> func.HttpResponse:
    services, tid = await _authorized(req)
    staff_ids, switches = parse_switches_update(read_json_object(req))
    changed = await users.set_switches(services, tid, staff_ids, switches)
    return json_response({"value": [user_json(u) for u in changed]})


@bp.function_name("console_user_resync")
@bp.route(route="console/tenants/{tid}/users/{staff_id}/resync", methods=["POST"], auth_level=ANON)
@console_api
async def console_user_resync(req: func.HttpRequest) -> func.HttpResponse:
    services, tid = await _authorized(req)
    record = await sync.request_user_resync(services, tid, parse_staff_id(str(req.route_params["staff_id"])))
    return json_response(user_json(record), 202)


@bp.function_name("console_resync")
@bp.route(route="console/tenants/{tid}/resync", methods=["POST"], auth_level=ANON)
@console_api
async def console_resync(req: func.HttpRequest) -> func.HttpResponse:
    services, tid = await _authorized(req)
    only_failed = parse_flag(read_optional_json_object(req), "only_failed")
    queued = await sync.request_tenant_resync(services, tid, only_failed=only_failed)
    return json_response({"status": "queued", "users": queued}, 202)


@bp.function_name("console_rematch")
@bp.route(route="console/tenants/{tid}/rematch", methods=["POST"], auth_level=ANON)
@console_api
async def console_rematch(req: func.HttpRequest) -> func.HttpResponse:
    services, tid = await _authorized(req)
    await users.request_rematch(services, tid)
    return json_response({"status": "queued"}, 202)


@bp.function_name("console_reauthorize")
@bp.route(route="console/tenants/{tid}/reauthorize", methods=["POST"], auth_level=ANON)
@console_api
async def console_reauthorize(req: func.HttpRequest) -> func.HttpResponse:
    services, tid = await _authorized(req)
    connection = await console.reauthorize(services, tid, read_optional_json_object(req))
    now = services.clock.now()
    progress = await tenants.tenant_progress(services, connection.tenant)  # the state it shows
    return json_response(tenant_json(connection.tenant, now, progress, connection.consent_url))


@bp.function_name("console_settings")
@bp.route(route="console/tenants/{tid}/settings", methods=["PATCH"], auth_level=ANON)
@console_api
async def console_settings(req: func.HttpRequest) -> func.HttpResponse:
    services, tid = await _authorized(req)
    updated = await tenant_settings.update_settings(services, tid, read_settings_patch(req))
    progress = await tenants.tenant_progress(services, updated)  # the state it shows
    return json_response(tenant_json(updated, services.clock.now(), progress))


@bp.function_name("console_user")
@bp.route(route="console/tenants/{tid}/users/{staff_id}", methods=["GET"], auth_level=ANON)
@console_api
async def console_user(req: func.HttpRequest) -> func.HttpResponse:
    services, tid = await _authorized(req)
    staff_id = parse_staff_id(str(req.route_params["staff_id"]))
    return json_response(user_detail_json(await user_detail.user_detail(services, tid, staff_id)))


@bp.function_name("console_user_subscription")
@bp.route(route="console/tenants/{tid}/users/{staff_id}/subscription", methods=["DELETE"], auth_level=ANON)
@console_api
async def console_user_subscription(req: func.HttpRequest) -> func.HttpResponse:
    services, tid = await _authorized(req)
    staff_id = parse_staff_id(str(req.route_params["staff_id"]))
    return json_response(user_json(await user_detail.delete_user_subscription(services, tid, staff_id)))


@bp.function_name("console_user_rematch")
@bp.route(route="console/tenants/{tid}/users/{staff_id}/rematch", methods=["POST"], auth_level=ANON)
@console_api
async def console_user_rematch(req: func.HttpRequest) -> func.HttpResponse:
    services, tid = await _authorized(req)
    staff_id = parse_staff_id(str(req.route_params["staff_id"]))
    return json_response(user_json(await user_detail.rematch_user(services, tid, staff_id)))


@bp.function_name("console_messages")
@bp.route(route="console/tenants/{tid}/messages", methods=["GET"], auth_level=ANON)
@console_api
async def console_messages(req: func.HttpRequest) -> func.HttpResponse:
    services, tid = await _authorized(req)
    query = messages.parse_message_query(req.params, services.clock.now())
    return json_response(message_page_json(await messages.list_messages(services, tid, query)))


@bp.function_name("console_message")
@bp.route(route="console/tenants/{tid}/messages/{monitor_id}", methods=["GET"], auth_level=ANON)
@console_api
async def console_message(req: func.HttpRequest) -> func.HttpResponse:
    services, tid = await _authorized(req)
    found = await messages.get_message(services, tid, str(req.route_params["monitor_id"]))
    return json_response(message_json(found))


@bp.function_name("console_message_retry")
@bp.route(route="console/tenants/{tid}/messages/{monitor_id}/retry", methods=["POST"], auth_level=ANON)
@console_api
async def console_message_retry(req: func.HttpRequest) -> func.HttpResponse:
    services, tid = await _authorized(req)
    queued = await messages.retry_message(services, tid, str(req.route_params["monitor_id"]))
    return json_response({"status": "queued", "queued": queued}, 202)


@bp.function_name("console_delivery")
@bp.route(route="console/tenants/{tid}/delivery", methods=["GET"], auth_level=ANON)
@console_api
async def console_delivery(req: func.HttpRequest) -> func.HttpResponse:
    services, tid = await _authorized(req)
    tenant = await tenants.get_tenant(services, tid)
    return json_response(hold_json(await deliveries.hold_state(services, tenant)))


@bp.function_name("console_delivery_hold")
@bp.route(route="console/tenants/{tid}/delivery/hold", methods=["POST"], auth_level=ANON)
@console_api
async def console_delivery_hold(req: func.HttpRequest) -> func.HttpResponse:
    services, tid = await _authorized(req)
    tenant = await deliveries.hold_delivery(services, tid)
    return json_response(hold_json(await deliveries.hold_state(services, tenant)))


@bp.function_name("console_delivery_release")
@bp.route(route="console/tenants/{tid}/delivery/release", methods=["POST"], auth_level=ANON)
@console_api
async def console_delivery_release(req: func.HttpRequest) -> func.HttpResponse:
    services, tid = await _authorized(req)
    _, queued = await deliveries.release_delivery(services, tid)
    return json_response({"status": "released", "queued_changes": queued}, 202)


@bp.function_name("console_dead_letters")
@bp.route(route="console/tenants/{tid}/dead-letters", methods=["GET"], auth_level=ANON)
@console_api
async def console_dead_letters(req: func.HttpRequest) -> func.HttpResponse:
    services, tid = await _authorized(req)
    await tenants.get_tenant(services, tid)
    letters = await deliveries.list_dead_letters(services, tid)
    return json_response({"value": [dead_letter_json(d) for d in letters]})


@bp.function_name("console_dead_letters_redeliver")
@bp.route(route="console/tenants/{tid}/dead-letters/redeliver", methods=["POST"], auth_level=ANON)
@console_api
async def console_dead_letters_redeliver(req: func.HttpRequest) -> func.HttpResponse:
    services, tid = await _authorized(req)
    await tenants.get_tenant(services, tid)
    queued = await deliveries.redeliver_dead_letters(services, tid)
    return json_response({"status": "queued", "deliveries": queued}, 202)


@bp.function_name("console_dead_letter")
@bp.route(route="console/tenants/{tid}/dead-letters/{first_sequence}", methods=["DELETE"], auth_level=ANON)
@console_api
async def console_dead_letter(req: func.HttpRequest) -> func.HttpResponse:
    services, tid = await _authorized(req)
    await tenants.get_tenant(services, tid)
    first = parse_sequence(str(req.route_params["first_sequence"]))
    return json_response(dead_letter_json(await deliveries.drop_dead_letter(services, tid, first)))


@bp.function_name("console_poison")
@bp.route(route="console/tenants/{tid}/poison", methods=["GET"], auth_level=ANON)
@console_api
async def console_poison(req: func.HttpRequest) -> func.HttpResponse:
    services, tid = await _authorized(req)
    return json_response(poison_list_json(await poison.list_poison(services, tid)))


@bp.function_name("console_poison_message")
@bp.route(route="console/tenants/{tid}/poison/{queue}/{poison_id}", methods=["DELETE"], auth_level=ANON)
@console_api
async def console_poison_message(req: func.HttpRequest) -> func.HttpResponse:
    services, tid = await _authorized(req)
    queue, poison_id = str(req.route_params["queue"]), str(req.route_params["poison_id"])
    return json_response(poison_json(await poison.drop_poison(services, tid, queue, poison_id)))


@bp.function_name("console_poison_redeliver")
@bp.route(
    route="console/tenants/{tid}/poison/{queue}/{poison_id}/redeliver", methods=["POST"], auth_level=ANON
)
@console_api
async def console_poison_redeliver(req: func.HttpRequest) -> func.HttpResponse:
    services, tid = await _authorized(req)
    queue, poison_id = str(req.route_params["queue"]), str(req.route_params["poison_id"])
    return json_response(poison_json(await poison.redeliver_poison(services, tid, queue, poison_id)), 202)


def parse_sequence(raw: str) -> int:
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) < 10**15:
        raise InvalidInput("first_sequence", "must be a sequence number of the feed (a positive integer)")
    return int(raw)


# --- helpers -----------------------------------------------------------------------------------------


def _tenant_id(req: func.HttpRequest) -> str:
    return parse_tenant_path(str(req.route_params["tid"]))


def _bearer(req: func.HttpRequest) -> str | None:
    scheme, _, value = (req.headers.get("authorization") or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


async def _authorized(req: func.HttpRequest) -> tuple[Services, str]:
    """The services and the path's tenant, once the bearer token is checked to grant that tenant."""
    services = container().services
    tid = _tenant_id(req)
    await console.authorize(services, _bearer(req), tid)
    return services, tid


def _html(body: str, status: int, policy: str) -> func.HttpResponse:
    return func.HttpResponse(
        body,
        status_code=status,
        mimetype="text/html",
        charset="utf-8",
        headers={
            **NO_STORE,
            "Content-Security-Policy": policy,
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
        },
    )


@dataclass(frozen=True, slots=True)
class ConsoleTemplate:
    html: str
    policy: str  # the Content-Security-Policy: only this page's own inline script and style run

    def render(self, tenant_id: str, app_id: str) -> str:
        """The page for one tenant; `app_id` is the connector's app, which the Teams policy grant names."""
        return self.html.replace("__TENANT_ID__", html.escape(tenant_id, quote=True)).replace(
            "__APP_ID__", html.escape(app_id, quote=True)
        )


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


@cache
def console_template() -> ConsoleTemplate:
    """The page, read once per worker on first use (never at import)."""
    text = PAGE_FILE.read_text(encoding="utf-8")
    scripts = re.findall(r"<script>(.*?)</script>", text, re.DOTALL)
    styles = re.findall(r"<style>(.*?)</style>", text, re.DOTALL)
    policy = (
        "default-src 'none'; "
        f"script-src {' '.join(map(_csp_hash, scripts))}; "
        f"style-src {' '.join(map(_csp_hash, styles))}; "
        "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    )
    return ConsoleTemplate(text, policy)


def refusal_page(denied: ConsoleAccessDenied) -> str:
    title = (
        "This console link has expired" if "expired" in denied.message else "This console link is not valid"
    )
    return f"""<!doctype html>
<html lang=en><head><meta charset=utf-8><title>{title}</title>
<meta name=viewport content="width=device-width, initial-scale=1">
<style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}}
h1{{font-size:1.4rem;color:#b3261e}}</style></head>
<body><h1>{title}</h1><p id=reason>{html.escape(denied.message.capitalize())}.</p>
<p>Console links are signed for one organisation and expire. Open the Microsoft 365 settings of the
application again, or ask its administrator, for a new console link.</p></body></html>"""
