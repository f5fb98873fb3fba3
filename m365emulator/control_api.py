"""The control surface under `/_emulator/` (JSON in and out, no auth): build the world, bend it,
and look at what happened. Documented endpoint by endpoint in README.md; `control.ControlClient`
wraps every route for Python tests."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from aiohttp import web

from m365emulator.calendar.timezones import find_zone
from m365emulator.consent import RedirectUriError, registered_redirect_uris
from m365emulator.core import Emulator
from m365emulator.directory import CONSENT_POLICIES, DirectoryError, Tenant, User
from m365emulator.errors import GraphError
from m365emulator.graph import emulator_of
from m365emulator.keyvault import VaultError
from m365emulator.odata import parse_datetime
from m365emulator.subscriptions import LIFECYCLE_EVENTS
from m365emulator.working_hours import default_working_hours, patched

Route = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def ok(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d, default=str))


async def body_of(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ControlError(400, "the body must be JSON") from exc
    if not isinstance(data, dict):
        raise ControlError(400, "the body must be a JSON object")
    return data


def guarded(route: Route) -> Route:
    async def wrapper(request: web.Request) -> web.StreamResponse:
        try:
            return await route(request)
        except ControlError as err:
            return ok({"error": str(err)}, err.status)
        except (DirectoryError, ValueError, TypeError, KeyError) as err:
            return ok({"error": f"{type(err).__name__}: {err}"}, 400)
        except GraphError as err:
            return ok({"error": err.message, "code": err.code}, err.status)
        except VaultError as err:
            return ok({"error": err.message, "code": err.code}, err.status)

    return wrapper


def tenant_of(emu: Emulator, request: web.Request) -> Tenant:
    tenant = emu.directory.tenant(request.match_info["tid"])
    if tenant is None:
        raise ControlError(404, f"unknown tenant {request.match_info['tid']}")
    return tenant


def user_of(emu: Emulator, request: web.Request) -> User:
    tenant = tenant_of(emu, request)
    user = emu.directory.user(tenant.id, request.match_info["user"])
    if user is None:
        raise ControlError(404, f"unknown user {request.match_info['user']}")
    return user


def _when(value: Any) -> Any:
    return parse_datetime(value) if isinstance(value, str) else None


# --- general ------------------------------------------------------------------------------------


async def health(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    return ok({"ok": True, "calendar": emu.mailboxes.available})


async def info(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    return ok(
        {
            "authority": emu.authority,
            "graph": emu.graph_url,
            "keyvault": emu.keyvault_url,
            "control": emu.control_url,
            "ca_file": emu.ca_file,
            "seed": emu.seed_name,
            "calendar": emu.mailboxes.available,
            **emu.seed_info,
        }
    )


async def reset(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    body = await body_of(request)
    await emu.reset(data=bool(body.get("data", False)), subscriptions=bool(body.get("subscriptions", True)))
    return ok({"reset": True, "data": bool(body.get("data", False))})


async def get_settings(request: web.Request) -> web.Response:
    return ok(emulator_of(request).settings.to_json())


async def put_settings(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    emu.settings.update(await body_of(request))
    return ok(emu.settings.to_json())


async def get_clock(request: web.Request) -> web.Response:
    return ok({"now": emulator_of(request).clock.now().isoformat()})


async def advance_clock(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    body = await body_of(request)
    delta = timedelta(
        days=float(body.get("days", 0)),
        hours=float(body.get("hours", 0)),
        minutes=float(body.get("minutes", 0)),
        seconds=float(body.get("seconds", 0)),
    )
    emu.advance_clock(delta)
    return ok({"now": emu.clock.now().isoformat()})


async def stats(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    out = emu.stats.to_json()
    out["sent_mail"] = len(emu.outbox)
    out["delivered_mail"] = len(emu.mail.deliveries)
    out["subscriptions"] = len(emu.subscriptions.by_id)
    out["users"] = emu.directory.user_count()
    out["events"] = emu.mailboxes.event_count() if emu.mailboxes.available else 0
    out["tasks"] = emu.todo.task_count()
    return ok(out)


async def mail(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    items = emu.outbox
    if request.query.get("tenant_id"):
        items = [m for m in items if m["tenant_id"] == request.query["tenant_id"]]
    if request.query.get("user"):
        ref = request.query["user"].lower()
        items = [
            m
            for m in items
            if m["user_id"] == ref or (isinstance(m.get("from"), str) and m["from"].lower() == ref)
        ]
    return ok({"value": items})


async def mail_deliveries(request: web.Request) -> web.Response:
    """Every copy Exchange "delivered": one per recipient of each sent message."""
    emu = emulator_of(request)
    items = emu.mail.deliveries
    if request.query.get("mailbox"):
        ref = request.query["mailbox"].lower()
        items = [d for d in items if ref in (d["mailbox"].lower(), d["sender"].lower())]
    if request.query.get("internet_message_id"):
        items = [d for d in items if d["internet_message_id"] == request.query["internet_message_id"]]
    if request.query.get("recipient"):
        items = [d for d in items if d["recipient"].lower() == request.query["recipient"].lower()]
    return ok({"value": items})


# --- directory ----------------------------------------------------------------------------------


async def list_tenants(request: web.Request) -> web.Response:
    return ok({"value": [t.to_json() for t in emulator_of(request).directory.tenants.values()]})


async def create_tenant(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    body = await body_of(request)
    tenant = emu.directory.add_tenant(
        body.get("display_name") or "Tenant",
        list(body.get("domains") or []),
        tenant_id=body.get("id"),
        consent_policy=body.get("consent_policy", "page"),
    )
    return ok(tenant.to_json(), 201)


async def get_tenant(request: web.Request) -> web.Response:
    return ok(tenant_of(emulator_of(request), request).to_json())


async def patch_tenant(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    tenant = tenant_of(emu, request)
    body = await body_of(request)
    if "consent_policy" in body:
        if body["consent_policy"] not in CONSENT_POLICIES:
            raise ControlError(400, f"consent_policy must be one of {CONSENT_POLICIES}")
        tenant.consent_policy = body["consent_policy"]
    if "display_name" in body:
        tenant.display_name = body["display_name"]
    return ok(tenant.to_json())


async def create_app(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    body = await body_of(request)
    home = emu.directory.tenant(str(body.get("home_tenant_id") or ""))
    if home is None:
        raise ControlError(400, "home_tenant_id must name an existing tenant")
    try:
        redirect_uris = registered_redirect_uris(body.get("redirect_uris") or [])
    except RedirectUriError as error:
        raise ControlError(400, f"redirect_uris: {error}") from error
    app = emu.directory.add_app(
        body.get("display_name") or "App",
        home.id,
        client_id=body.get("client_id"),
        multi_tenant=bool(body.get("multi_tenant", False)),
        redirect_uris=redirect_uris,
        permissions=body.get("permissions"),
    )
    secrets = body.get("secrets")
    if secrets is None:
        secrets = [{}]
    for spec in secrets:
        emu.directory.add_secret(
            app.client_id,
            value=spec.get("value"),
            end=_when(spec.get("end_date_time")),
            display_name=spec.get("display_name", ""),
        )
    if body.get("consent"):
        emu.directory.grant(app.client_id, home.id)
    return ok(app.to_json(), 201)


async def get_app(request: web.Request) -> web.Response:
    app = emulator_of(request).directory.apps.get(request.match_info["cid"].lower())
    if app is None:
        raise ControlError(404, "unknown app")
    return ok(app.to_json())


async def patch_app(request: web.Request) -> web.Response:
    """The app registration's redirect URIs, replaced (as `az ad app update --web-redirect-uris`)."""
    app = emulator_of(request).directory.apps.get(request.match_info["cid"].lower())
    if app is None:
        raise ControlError(404, "unknown app")
    body = await body_of(request)
    unknown = sorted(set(body) - {"redirect_uris"})
    if unknown:
        raise ControlError(400, f"{unknown[0]}: not a field of an app registration this route changes")
    if "redirect_uris" in body:
        try:
            app.redirect_uris = registered_redirect_uris(body["redirect_uris"])
        except RedirectUriError as error:
            raise ControlError(400, f"redirect_uris: {error}") from error
    return ok(app.to_json())


async def add_secret(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    body = await body_of(request)
    secret = emu.directory.add_secret(
        request.match_info["cid"],
        value=body.get("value"),
        end=_when(body.get("end_date_time")),
        display_name=body.get("display_name", ""),
    )
    return ok(secret.to_json(), 201)


async def remove_secret(request: web.Request) -> web.Response:
    emulator_of(request).directory.remove_secret(request.match_info["cid"], request.match_info["kid"])
    return ok({"removed": request.match_info["kid"]})


async def consent(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    tenant = tenant_of(emu, request)
    body = await body_of(request)
    sp = emu.directory.grant(str(body["client_id"]), tenant.id, body.get("permissions"))
    return ok(sp.to_json())


async def revoke(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    tenant = tenant_of(emu, request)
    body = await body_of(request)
    client_id = str(body["client_id"]).lower()
    mode = body.get("mode", "grants")
    if mode == "grants":
        emu.directory.revoke_grants(client_id, tenant.id)
        emu.subscriptions.on_grants_revoked(tenant.id, client_id)
    elif mode == "service_principal":
        emu.directory.delete_service_principal(client_id, tenant.id)
        emu.subscriptions.on_principal_deleted(tenant.id, client_id)
    else:
        raise ControlError(400, "mode must be 'grants' or 'service_principal'")
    sp = emu.directory.service_principal(client_id, tenant.id)
    return ok(sp.to_json() if sp else {})


async def service_principals(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    tenant = tenant_of(emu, request)
    return ok(
        {"value": [sp.to_json() for sp in emu.directory.service_principals() if sp.tenant_id == tenant.id]}
    )


USER_FIELDS = {
    "display_name",
    "mail",
    "proxy_addresses",
    "mailbox_enabled",
    "account_enabled",
    "time_zone",
    "given_name",
    "surname",
    "job_title",
    "office_location",
    "department",
}


async def list_users(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    tenant = tenant_of(emu, request)
    return ok({"value": [u.control_json() for u in emu.directory.users(tenant.id)]})


async def create_user(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    tenant = tenant_of(emu, request)
    body = await body_of(request)
    upn = body.get("upn")
    if not isinstance(upn, str) or "@" not in upn:
        raise ControlError(400, "upn is required")
    unknown = set(body) - USER_FIELDS - {"upn", "id"}
    if unknown:
        raise ControlError(400, f"unknown user fields {sorted(unknown)}")
    kwargs = {k: v for k, v in body.items() if k in USER_FIELDS and k != "display_name"}
    user = emu.directory.add_user(
        tenant.id, upn, body.get("display_name") or upn.split("@")[0], user_id=body.get("id"), **kwargs
    )
    return ok(user.control_json(), 201)


async def get_user(request: web.Request) -> web.Response:
    return ok(user_of(emulator_of(request), request).control_json())


async def patch_user(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    user = user_of(emu, request)
    emu.directory.update_user(user, await body_of(request))
    return ok(user.control_json())


async def set_working_hours(request: web.Request) -> web.Response:
    """PUT: a Graph `workingHours` over the default week (what it leaves out stays default);
    DELETE: back to the default (Monday to Friday, 08:00-17:00 in the mailbox's zone)."""
    emu = emulator_of(request)
    user = user_of(emu, request)
    if request.method == "DELETE":
        user.working_hours_set = None
    else:
        base = default_working_hours(user.time_zone)
        user.working_hours_set = patched(base, await body_of(request), lambda n: find_zone(n) is not None)
    return ok(user.control_json())


async def disable_user(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    user = user_of(emu, request)
    user.account_enabled = False
    return ok(user.control_json())


async def create_policy(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    tenant = tenant_of(emu, request)
    body = await body_of(request)
    ids = []
    for ref in body.get("user_ids") or []:
        user = emu.directory.user(tenant.id, ref)
        if user is None:
            raise ControlError(400, f"unknown user {ref}")
        ids.append(user.id)
    policy = emu.directory.add_policy(
        tenant.id, str(body["client_id"]), ids, global_=bool(body.get("global"))
    )
    return ok(policy.to_json(), 201)


async def list_policies(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    tenant = tenant_of(emu, request)
    return ok({"value": [p.to_json() for p in emu.directory.policies.values() if p.tenant_id == tenant.id]})


async def list_meetings(request: web.Request) -> web.Response:
    """The tenant's standalone Teams meetings, as a test sees them: organiser, externalId, times."""
    emu = emulator_of(request)
    tenant = tenant_of(emu, request)
    value = [
        {
            "id": meeting["id"],
            "organizer": owner,
            "externalId": meeting.get("externalId"),
            "joinWebUrl": meeting["joinWebUrl"],
            "subject": meeting.get("subject"),
            "startDateTime": meeting["startDateTime"],
            "endDateTime": meeting["endDateTime"],
        }
        for (owner, _), meeting in emu.meetings.items()
        if meeting["participants"]["organizer"]["identity"]["user"]["tenantId"] == tenant.id
    ]
    return ok({"value": value})


async def delete_policy(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    if emu.directory.policies.pop(request.match_info["pid"], None) is None:
        raise ControlError(404, "unknown policy")
    return ok({"deleted": True})


# --- seeding mailboxes ----------------------------------------------------------------------------


async def seed_events(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    user = user_of(emu, request)
    if not emu.mailboxes.available:
        raise ControlError(501, "the calendar part is not available")
    body = await body_of(request)
    specs = body.get("events") if "events" in body else [body]
    store = emu.mailboxes.store(user)
    created = []
    for spec in specs:
        payload = spec.get("event", spec)
        created.append(store.seed_event(payload, ews_id=spec.get("ews_id")))
    return ok({"value": created}, 201)


async def seed_tasks(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    user = user_of(emu, request)
    body = await body_of(request)
    lst = emu.todo.list_by_name(user, body.get("list") or "Tasks")
    specs = body.get("tasks") if "tasks" in body else [body.get("task", {})]
    created = [emu.todo.create_task(user, lst, spec) for spec in specs]
    return ok({"list_id": lst.id, "value": created}, 201)


async def move_task(request: web.Request) -> web.Response:
    """The user moves a task to another of their lists (by list name; made when missing), as the To Do app
    does: `{"list": <from>, "task_id": ..., "to": <list name>}`."""
    emu = emulator_of(request)
    user = user_of(emu, request)
    body = await body_of(request)
    source = emu.todo.list_by_name(user, body.get("list") or "Tasks", create=False)
    target = emu.todo.list_by_name(user, str(body.get("to") or "Tasks"))
    moved = emu.todo.move_task(user, source, str(body.get("task_id") or ""), target)
    return ok({"list_id": target.id, "task": moved}, 201)


async def expire_delta(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    body = await body_of(request)
    user = None
    if body.get("user"):
        tenant = emu.directory.tenant(str(body.get("tenant_id") or ""))
        if tenant is None:
            raise ControlError(400, "tenant_id is required with user")
        user = emu.directory.user(tenant.id, body["user"])
        if user is None:
            raise ControlError(404, "unknown user")
    events = emu.mailboxes.expire_delta_tokens(user) if emu.mailboxes.available else 0
    tasks = emu.todo.expire_delta_tokens(user)
    return ok({"expired": {"events": events, "tasks": tasks}})


# --- vault ----------------------------------------------------------------------------------------


async def vault_grant(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    body = await body_of(request)
    tenant = emu.directory.tenant(str(body.get("tenant_id") or ""))
    if tenant is None:
        raise ControlError(400, "tenant_id must name an existing tenant")
    emu.vault.grant(tenant.id, str(body["client_id"]))
    if emu.vault.tenant_id is None or body.get("vault_tenant"):
        emu.vault.tenant_id = tenant.id
    return ok({"grants": sorted(f"{t}/{c}" for t, c in emu.vault.grants), "tenant_id": emu.vault.tenant_id})


async def vault_set(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    body = await body_of(request)
    secret, version = emu.vault.set(str(body["name"]), body["value"], emu.clock.now())
    return ok({"name": secret.name, "version": version.version}, 201)


# --- faults and notifications --------------------------------------------------------------------


async def list_faults(request: web.Request) -> web.Response:
    return ok({"value": [r.to_json() for r in emulator_of(request).faults.rules]})


async def add_fault(request: web.Request) -> web.Response:
    return ok(emulator_of(request).faults.add(await body_of(request)).to_json(), 201)


async def clear_faults(request: web.Request) -> web.Response:
    emulator_of(request).faults.clear()
    return ok({"cleared": True})


async def delete_fault(request: web.Request) -> web.Response:
    if not emulator_of(request).faults.remove(request.match_info["rid"]):
        raise ControlError(404, "unknown fault")
    return ok({"deleted": True})


async def list_rules(request: web.Request) -> web.Response:
    return ok({"value": [r.to_json() for r in emulator_of(request).dispatcher.rules]})


async def add_rule(request: web.Request) -> web.Response:
    return ok(emulator_of(request).dispatcher.add_rule(await body_of(request)).to_json(), 201)


async def clear_rules(request: web.Request) -> web.Response:
    emulator_of(request).dispatcher.rules.clear()
    return ok({"cleared": True})


async def deliveries(request: web.Request) -> web.Response:
    return ok({"value": list(emulator_of(request).dispatcher.deliveries)})


async def emit(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    body = await body_of(request)
    tenant = emu.directory.tenant(str(body.get("tenant_id") or ""))
    if tenant is None:
        raise ControlError(400, "tenant_id must name an existing tenant")
    user = emu.directory.user(tenant.id, str(body.get("user") or ""))
    if user is None:
        raise ControlError(404, "unknown user")
    kind = body.get("kind", "events")
    if kind not in ("events", "todo") or body.get("change_type") not in ("created", "updated", "deleted"):
        raise ControlError(400, "kind must be events or todo; change_type created, updated or deleted")
    sent = emu.subscriptions.notify(
        tenant.id,
        user.id,
        kind,
        body["change_type"],
        str(body.get("id") or "AAMkAGemulated="),
        etag=body.get("etag"),
        list_id=body.get("list_id"),
    )
    return ok({"notified": sent})


async def list_subscriptions(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    return ok({"value": [s.control_json() for s in emu.subscriptions.by_id.values()]})


async def remove_subscription(request: web.Request) -> web.Response:
    """Graph removes a subscription and tells its lifecycle URL; with `?lifecycle=false` it is lost
    silently (the notification never reaches the app, as when its endpoint was down)."""
    emu = emulator_of(request)
    silent = request.query.get("lifecycle", "true").lower()
    if silent not in ("true", "false"):
        raise ControlError(400, "lifecycle must be true or false")
    sub = emu.subscriptions.remove(request.match_info["sid"], notify=silent == "true")
    if sub is None:
        raise ControlError(404, "unknown subscription")
    told = silent == "true" and sub.lifecycle_url is not None and sub.kind == "events"  # none for To Do
    return ok({"removed": sub.id, "lifecycle_notified": told})


async def revoke_tokens(request: web.Request) -> web.Response:
    """A revocation event for the app in the tenant (contract §1.5): Graph refuses its CAE tokens issued
    until now with a claims challenge; a token request carrying the challenge's claims gets a new one."""
    emu = emulator_of(request)
    tenant = tenant_of(emu, request)
    body = await body_of(request)
    if not isinstance(body.get("client_id"), str) or not body["client_id"]:
        raise ControlError(400, "client_id is required")
    return ok({"revoked_at": emu.issuer.revoke(tenant.id, body["client_id"], emu.clock.now())})


async def lifecycle(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    body = await body_of(request)
    event = body.get("event")
    if event not in LIFECYCLE_EVENTS:
        raise ControlError(400, f"event must be one of {LIFECYCLE_EVENTS}")
    if event == "subscriptionRemoved":
        return await remove_subscription(request)
    sub = emu.subscriptions.by_id.get(request.match_info["sid"])
    if sub is None:
        raise ControlError(404, "unknown subscription")
    return ok({"sent": emu.subscriptions.lifecycle(sub, event)})


def add_routes(app: web.Application) -> None:
    routes: list[tuple[str, str, Route]] = [
        ("GET", "/health", health),
        ("GET", "/info", info),
        ("POST", "/reset", reset),
        ("GET", "/settings", get_settings),
        ("PUT", "/settings", put_settings),
        ("GET", "/clock", get_clock),
        ("POST", "/clock/advance", advance_clock),
        ("GET", "/stats", stats),
        ("GET", "/mail", mail),
        ("GET", "/mail/deliveries", mail_deliveries),
        ("GET", "/tenants", list_tenants),
        ("POST", "/tenants", create_tenant),
        ("GET", "/tenants/{tid}", get_tenant),
        ("PATCH", "/tenants/{tid}", patch_tenant),
        ("POST", "/tenants/{tid}/consent", consent),
        ("POST", "/tenants/{tid}/revoke", revoke),
        ("POST", "/tenants/{tid}/tokens/revoke", revoke_tokens),
        ("GET", "/tenants/{tid}/service-principals", service_principals),
        ("GET", "/tenants/{tid}/users", list_users),
        ("POST", "/tenants/{tid}/users", create_user),
        ("GET", "/tenants/{tid}/users/{user}", get_user),
        ("PATCH", "/tenants/{tid}/users/{user}", patch_user),
        ("POST", "/tenants/{tid}/users/{user}/disable", disable_user),
        ("PUT", "/tenants/{tid}/users/{user}/working-hours", set_working_hours),
        ("DELETE", "/tenants/{tid}/users/{user}/working-hours", set_working_hours),
        ("POST", "/tenants/{tid}/users/{user}/events", seed_events),
        ("POST", "/tenants/{tid}/users/{user}/tasks", seed_tasks),
        ("POST", "/tenants/{tid}/users/{user}/tasks/move", move_task),
        ("GET", "/tenants/{tid}/access-policies", list_policies),
        ("POST", "/tenants/{tid}/access-policies", create_policy),
        ("DELETE", "/tenants/{tid}/access-policies/{pid}", delete_policy),
        ("GET", "/tenants/{tid}/meetings", list_meetings),
        ("POST", "/apps", create_app),
        ("GET", "/apps/{cid}", get_app),
        ("PATCH", "/apps/{cid}", patch_app),
        ("POST", "/apps/{cid}/secrets", add_secret),
        ("DELETE", "/apps/{cid}/secrets/{kid}", remove_secret),
        ("POST", "/keyvault/grants", vault_grant),
        ("POST", "/keyvault/secrets", vault_set),
        ("GET", "/faults", list_faults),
        ("POST", "/faults", add_fault),
        ("DELETE", "/faults", clear_faults),
        ("DELETE", "/faults/{rid}", delete_fault),
        ("GET", "/notification-rules", list_rules),
        ("POST", "/notification-rules", add_rule),
        ("DELETE", "/notification-rules", clear_rules),
        ("GET", "/notifications", deliveries),
        ("POST", "/notifications/emit", emit),
        ("POST", "/delta/expire", expire_delta),
        ("GET", "/subscriptions", list_subscriptions),
        ("DELETE", "/subscriptions/{sid}", remove_subscription),
        ("POST", "/subscriptions/{sid}/lifecycle", lifecycle),
    ]
    for method, path, handler in routes:
        app.router.add_route(method, "/_emulator" + path, guarded(handler))
