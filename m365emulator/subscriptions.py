"""Graph change-notification subscriptions (contract §5): create with the validation handshake,
renew, reauthorize, delete, list; lifetimes and quotas; fan-out of changes and lifecycle events."""

from __future__ import annotations

import ipaddress
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote, urlsplit

from aiohttp import web

from m365emulator.errors import GraphError
from m365emulator.graph import claims_of, emulator_of, json_body, respond
from m365emulator.odata import graph_datetime, parse_datetime

if TYPE_CHECKING:
    from m365emulator.core import Emulator

Kind = Literal["events", "todo"]
LifecycleEvent = Literal["reauthorizationRequired", "subscriptionRemoved", "missed"]
LIFECYCLE_EVENTS: tuple[str, ...] = ("reauthorizationRequired", "subscriptionRemoved", "missed")
CHANGE_TYPES = frozenset({"created", "updated", "deleted"})
TLS_VERSIONS = ("v1_0", "v1_1", "v1_2", "v1_3")

_EVENTS = re.compile(r"^/?users/([^/]+)/(?:calendar/)?events/?$", re.IGNORECASE)
_TASKS = re.compile(r"^/?users/([^/]+)/todo/lists/([^/]+)/tasks/?$", re.IGNORECASE)
_ME = re.compile(r"^/?me(/|$)", re.IGNORECASE)


@dataclass
class Subscription:
    id: str
    tenant_id: str
    client_id: str
    creator_id: str
    resource: str
    kind: Kind
    user_id: str
    list_id: str | None
    change_types: frozenset[str]
    change_type: str
    notification_url: str
    lifecycle_url: str | None
    expiration: datetime
    client_state: str | None
    tls_version: str
    reauth_sent: bool = False

    def to_graph(self, base: str, *, with_client_state: bool) -> dict[str, Any]:
        return {
            "@odata.context": f"{base}/$metadata#subscriptions/$entity",
            "id": self.id,
            "resource": self.resource,
            "applicationId": self.client_id,
            "changeType": self.change_type,
            "clientState": self.client_state if with_client_state else None,
            "notificationUrl": self.notification_url,
            "notificationQueryOptions": None,
            "lifecycleNotificationUrl": self.lifecycle_url,
            "expirationDateTime": graph_datetime(self.expiration),
            "creatorId": self.creator_id,
            "includeResourceData": None,
            "latestSupportedTlsVersion": self.tls_version,
            "encryptionCertificate": None,
            "encryptionCertificateId": None,
            "notificationUrlAppId": None,
            "notificationContentType": "application/json",
        }

    def control_json(self) -> dict[str, Any]:
        out = self.to_graph("", with_client_state=True)
        out.pop("@odata.context")
        out["tenantId"] = self.tenant_id
        out["userId"] = self.user_id
        return out


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_url(name: str, url: Any) -> str:
    if not isinstance(url, str) or not url:
        raise GraphError(400, "InvalidRequest", f"'{name}' is required.")
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and _is_loopback(parts.hostname):
        return url  # emulator leniency: the local function host speaks plain http on loopback
    raise GraphError(400, "InvalidRequest", f"The {name} must be an https URL.")


class SubscriptionService:
    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.by_id: dict[str, Subscription] = {}
        self._by_mailbox: dict[tuple[str, str], dict[str, Subscription]] = {}

    def reset(self) -> None:
        self.by_id.clear()
        self._by_mailbox.clear()

    # changes -------------------------------------------------------------------------------------
    def _store(self, sub: Subscription) -> None:
        self.by_id[sub.id] = sub
        self._by_mailbox.setdefault((sub.tenant_id, sub.user_id), {})[sub.id] = sub

    def _drop(self, sub: Subscription) -> None:
        self.by_id.pop(sub.id, None)
        mailbox = self._by_mailbox.get((sub.tenant_id, sub.user_id))
        if mailbox is not None:
            mailbox.pop(sub.id, None)
            if not mailbox:
                del self._by_mailbox[(sub.tenant_id, sub.user_id)]

    def for_mailbox(self, tenant_id: str, user_id: str) -> list[Subscription]:
        return list(self._by_mailbox.get((tenant_id, user_id), {}).values())

    def _limits(self, kind: Kind) -> int:
        s = self.emu.settings
        return s.max_lifetime_events_minutes if kind == "events" else s.max_lifetime_todo_minutes

    def _expiration(self, raw: Any, kind: Kind) -> datetime:
        if not isinstance(raw, str) or not raw:
            raise GraphError(400, "InvalidRequest", "'expirationDateTime' is required.")
        try:
            value = parse_datetime(raw)
        except ValueError as exc:
            raise GraphError(400, "InvalidRequest", f"Invalid expirationDateTime '{raw}'.") from exc
        now = self.emu.clock.now()
        minimum = now + timedelta(minutes=self.emu.settings.min_lifetime_minutes)
        maximum = self._limits(kind)
        if value <= now:  # Graph refuses an expiration in the past (400); the text is the emulator's
            raise GraphError(
                400,
                "InvalidRequest",
                f"Subscription expiration '{raw}' is in the past; it must be in the future.",
            )
        if value < minimum:
            return minimum  # Graph silently raises short lifetimes to 45 minutes (contract §5.1)
        if value > now + timedelta(minutes=maximum, seconds=5):
            raise GraphError(
                400, "ExtensionError", f"Subscription expiration can only be {maximum} minutes in the future."
            )
        return value

    def _target(self, tenant_id: str, resource: Any) -> tuple[Kind, str, str | None]:
        if not isinstance(resource, str) or not resource:
            raise GraphError(400, "InvalidRequest", "'resource' is required.")
        path = resource.split("?", 1)[0]
        if _ME.match(path):
            raise GraphError(
                400, "BadRequest", "/me request is only valid with delegated authentication flow."
            )
        kind: Kind
        match = _EVENTS.match(path)
        list_id: str | None = None
        if match:
            kind = "events"
        else:
            match = _TASKS.match(path)
            if not match:
                raise GraphError(400, "InvalidRequest", f"The resource '{resource}' is not supported.")
            kind = "todo"
            list_id = unquote(match.group(2))
        ref = unquote(match.group(1))
        user = self.emu.directory.user(tenant_id, ref)
        reason = None
        if user is None:
            reason = f"The requested user '{ref}' is invalid."
        elif not user.mailbox_enabled:
            reason = "REST API is not yet supported for this mailbox."
        if reason or user is None:
            raise GraphError(
                404,
                "ExtensionError",
                f"Operation: Create; Exception: [Status Code: NotFound; Reason: {reason}]",
            )
        if list_id is not None and not self.emu.todo.has_list(user, list_id):
            raise GraphError(
                404,
                "ExtensionError",
                "Operation: Create; Exception: [Status Code: NotFound; Reason: The specified object "
                "was not found.]",
            )
        return kind, user.id, list_id

    async def create(self, request: web.Request) -> dict[str, Any]:
        claims = claims_of(request)
        body = await json_body(request)
        kind, user_id, list_id = self._target(claims.tenant_id, body.get("resource"))
        needed = ("Calendars.ReadWrite", "Calendars.Read") if kind == "events" else ("Tasks.ReadWrite.All",)
        if not claims.roles.intersection(needed):
            raise GraphError(
                403,
                "ExtensionError",
                "Operation: Create; Exception: [Status Code: Forbidden; Reason: Access is denied. "
                "Check credentials and try again.]",
            )
        raw_types = body.get("changeType")
        types = {t.strip() for t in raw_types.split(",")} if isinstance(raw_types, str) else set()
        if not types or not types <= CHANGE_TYPES:
            raise GraphError(400, "InvalidRequest", "'changeType' must be created, updated and/or deleted.")
        notification_url = _check_url("notificationUrl", body.get("notificationUrl"))
        lifecycle_url = body.get("lifecycleNotificationUrl")
        if lifecycle_url is not None:
            lifecycle_url = _check_url("lifecycleNotificationUrl", lifecycle_url)
        client_state = body.get("clientState")
        if client_state is not None and (not isinstance(client_state, str) or len(client_state) > 128):
            raise GraphError(
                400, "InvalidRequest", "'clientState' must be a string of at most 128 characters."
            )
        tls = body.get("latestSupportedTlsVersion") or "v1_2"
        if tls not in TLS_VERSIONS:
            raise GraphError(400, "InvalidRequest", f"Invalid latestSupportedTlsVersion '{tls}'.")
        if body.get("includeResourceData"):
            raise GraphError(
                400,
                "InvalidRequest",
                "Rich notifications (includeResourceData) are not supported by the emulator.",
            )
        expiration = self._expiration(body.get("expirationDateTime"), kind)
        existing = self.for_mailbox(claims.tenant_id, user_id)
        for sub in existing:
            if (
                sub.client_id == claims.client_id
                and sub.kind == kind
                and sub.list_id == list_id
                and sub.change_types == frozenset(types)
                and sub.notification_url == notification_url
            ):
                raise GraphError(
                    409,
                    "InvalidRequest",
                    f"Subscription Id {sub.id} already exists for the requested combination",
                )
        if len(existing) >= self.emu.settings.max_subscriptions_per_mailbox:
            raise GraphError(
                403,
                "ExtensionError",
                "Operation: Create; Exception: [Status Code: Forbidden; Reason: The maximum number of "
                f"{self.emu.settings.max_subscriptions_per_mailbox} subscriptions per mailbox has "
                "been reached.]",
            )
        for url in dict.fromkeys([notification_url, lifecycle_url]):
            if url is None:
                continue
            problem = await self.emu.dispatcher.validate(url)
            if problem is not None:
                raise GraphError(400, "InvalidRequest", problem)
        change_type = ",".join(t for t in ("created", "updated", "deleted") if t in types)
        sub = Subscription(
            id=str(uuid.uuid4()),
            tenant_id=claims.tenant_id,
            client_id=claims.client_id,
            creator_id=claims.sp_id,
            resource=body["resource"],
            kind=kind,
            user_id=user_id,
            list_id=list_id,
            change_types=frozenset(types),
            change_type=change_type,
            notification_url=notification_url,
            lifecycle_url=lifecycle_url,
            expiration=expiration,
            client_state=client_state,
            tls_version=tls,
        )
        self._store(sub)
        self._maybe_reauthorize(sub, self.emu.clock.now())
        return sub.to_graph(self.emu.graph_url, with_client_state=True)

    def owned(self, request: web.Request, sub_id: str) -> Subscription:
        claims = claims_of(request)
        sub = self.by_id.get(sub_id)
        if sub is None or sub.tenant_id != claims.tenant_id or sub.client_id != claims.client_id:
            raise GraphError(404, "ResourceNotFound", f"The object '{sub_id}' was not found.")
        if sub.expiration <= self.emu.clock.now():
            self._drop(sub)
            raise GraphError(404, "ResourceNotFound", f"The object '{sub_id}' was not found.")
        return sub

    async def update(self, request: web.Request, sub_id: str) -> dict[str, Any]:
        sub = self.owned(request, sub_id)
        body = await json_body(request)
        if "lifecycleNotificationUrl" in body and body["lifecycleNotificationUrl"] != sub.lifecycle_url:
            raise GraphError(
                400,
                "InvalidRequest",
                "lifecycleNotificationUrl cannot be changed; delete and recreate the subscription.",
            )
        new_url = sub.notification_url
        if "notificationUrl" in body and body["notificationUrl"] != sub.notification_url:
            new_url = _check_url("notificationUrl", body["notificationUrl"])
            problem = await self.emu.dispatcher.validate(new_url)
            if problem is not None:
                raise GraphError(400, "InvalidRequest", problem)
        if "expirationDateTime" in body:
            sub.expiration = self._expiration(body["expirationDateTime"], sub.kind)
            sub.reauth_sent = False
        sub.notification_url = new_url
        self._maybe_reauthorize(sub, self.emu.clock.now())
        return sub.to_graph(self.emu.graph_url, with_client_state=False)

    def delete(self, request: web.Request, sub_id: str) -> None:
        self._drop(self.owned(request, sub_id))

    def reauthorize(self, request: web.Request, sub_id: str) -> None:
        claims = claims_of(request)
        sub = self.owned(request, sub_id)
        needed = (
            ("Calendars.ReadWrite", "Calendars.Read") if sub.kind == "events" else ("Tasks.ReadWrite.All",)
        )
        if not claims.roles.intersection(needed):
            raise GraphError(403, "ExtensionError", "Operation: Reauthorize; Exception: Access is denied.")
        sub.reauth_sent = False

    def listing(self, request: web.Request) -> list[dict[str, Any]]:
        claims = claims_of(request)
        now = self.emu.clock.now()
        return [
            s.to_graph(self.emu.graph_url, with_client_state=False)
            for s in self.by_id.values()
            if s.tenant_id == claims.tenant_id and s.client_id == claims.client_id and s.expiration > now
        ]

    # notifications -------------------------------------------------------------------------------
    def notify(
        self,
        tenant_id: str,
        user_id: str,
        kind: Kind,
        change_type: str,
        item_id: str,
        *,
        etag: str | None = None,
        list_id: str | None = None,
    ) -> int:
        """Fan one change out to the matching subscriptions; returns how many were notified."""
        subs = self._by_mailbox.get((tenant_id, user_id))
        if not subs:
            return 0
        now = self.emu.clock.now()
        sent = 0
        for sub in list(subs.values()):
            if sub.kind != kind or change_type not in sub.change_types or sub.expiration <= now:
                continue
            if kind == "todo" and sub.list_id != list_id:
                continue
            if kind == "events":
                resource = f"Users/{user_id}/Events/{item_id}"
                odata_type = "#Microsoft.Graph.Event"
            else:
                resource = f"Users/{user_id}/todo/lists/{list_id}/tasks/{item_id}"
                odata_type = "#Microsoft.Graph.todoTask"
            resource_data: dict[str, Any] = {"@odata.type": odata_type, "@odata.id": resource, "id": item_id}
            if etag:
                resource_data["@odata.etag"] = etag
            item = {
                "subscriptionId": sub.id,
                "subscriptionExpirationDateTime": graph_datetime(sub.expiration),
                "changeType": change_type,
                "resource": resource,
                "resourceData": resource_data,
                "clientState": sub.client_state,
                "tenantId": sub.tenant_id,
            }
            self.emu.dispatcher.send(sub.notification_url, item, "change")
            sent += 1
        return sent

    def lifecycle(self, sub: Subscription, event: str) -> bool:
        """Send a lifecycle notification (when the subscription has a lifecycle URL and its resource has
        the event: `reauthorizationRequired` every resource; `subscriptionRemoved` and `missed` only Outlook
        message, event and contact (contract §5.7, change-notifications-lifecycle-events): a todoTask
        subscription Graph removes is simply gone, as the renewal's 404 or the listing then shows)."""
        if sub.lifecycle_url is None:
            return False
        if sub.kind == "todo" and event != "reauthorizationRequired":
            return False
        item = {
            "subscriptionId": sub.id,
            "subscriptionExpirationDateTime": graph_datetime(sub.expiration),
            "tenantId": sub.tenant_id,
            "clientState": sub.client_state,
            "lifecycleEvent": event,
        }
        self.emu.stats.lifecycle_sent += 1
        self.emu.dispatcher.send(sub.lifecycle_url, item, "lifecycle")
        return True

    def remove(self, sub_id: str, *, notify: bool = True) -> Subscription | None:
        """Graph removes a subscription: gone, and (unless `notify` is False: a notification that never
        arrived) its lifecycle URL is told `subscriptionRemoved`."""
        sub = self.by_id.get(sub_id)
        if sub is None:
            return None
        self._drop(sub)
        if notify:
            self.lifecycle(sub, "subscriptionRemoved")
        return sub

    def _maybe_reauthorize(self, sub: Subscription, now: datetime) -> None:
        before = timedelta(minutes=self.emu.settings.reauthorization_before_minutes)
        if not sub.reauth_sent and sub.expiration - now <= before:
            sub.reauth_sent = True
            self.lifecycle(sub, "reauthorizationRequired")

    def tick(self) -> None:
        """Expire what has expired; warn what is about to (runs each second and on clock advance)."""
        now = self.emu.clock.now()
        for sub in list(self.by_id.values()):
            if sub.expiration <= now:
                self._drop(sub)
            else:
                self._maybe_reauthorize(sub, now)

    def on_grants_revoked(self, tenant_id: str, client_id: str) -> None:
        for sub in list(self.by_id.values()):
            if sub.tenant_id == tenant_id and sub.client_id == client_id:
                self.lifecycle(sub, "reauthorizationRequired")

    def on_principal_deleted(self, tenant_id: str, client_id: str) -> None:
        for sub in list(self.by_id.values()):
            if sub.tenant_id == tenant_id and sub.client_id == client_id:
                self.remove(sub.id)


# routes ------------------------------------------------------------------------------------------


async def create_subscription(request: web.Request) -> web.Response:
    return respond(await emulator_of(request).subscriptions.create(request), 201)


async def list_subscriptions(request: web.Request) -> web.Response:
    value = emulator_of(request).subscriptions.listing(request)
    return respond(
        {"@odata.context": f"{emulator_of(request).graph_url}/$metadata#subscriptions", "value": value}
    )


async def get_subscription(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    sub = emu.subscriptions.owned(request, request.match_info["sub_id"])
    return respond(sub.to_graph(emu.graph_url, with_client_state=False))


async def patch_subscription(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    return respond(await emu.subscriptions.update(request, request.match_info["sub_id"]))


async def delete_subscription(request: web.Request) -> web.Response:
    emulator_of(request).subscriptions.delete(request, request.match_info["sub_id"])
    return web.Response(status=204)


async def reauthorize_subscription(request: web.Request) -> web.Response:
    emulator_of(request).subscriptions.reauthorize(request, request.match_info["sub_id"])
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1.0/subscriptions", create_subscription)
    app.router.add_get("/v1.0/subscriptions", list_subscriptions)
    app.router.add_get("/v1.0/subscriptions/{sub_id}", get_subscription)
    app.router.add_patch("/v1.0/subscriptions/{sub_id}", patch_subscription)
    app.router.add_delete("/v1.0/subscriptions/{sub_id}", delete_subscription)
    app.router.add_post("/v1.0/subscriptions/{sub_id}/reauthorize", reauthorize_subscription)
    app.router.add_post("/v1.0/subscriptions/{sub_id}/microsoft.graph.reauthorize", reauthorize_subscription)
