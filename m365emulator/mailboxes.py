"""The seam to the calendar part (`m365emulator.calendar`): one lazily created `CalendarStore` per
mailbox, the `MailboxResolver` its routes call, change fan-out to subscriptions, the meeting
router (attendee address → the calendar of a mailbox of the same tenant, for invitations), and
`translateExchangeIds` (EWS, REST or immutable ids of existing items → REST or immutable ids).

The calendar package is built separately; while it is missing the server runs without events.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from m365emulator.directory import User
from m365emulator.errors import GraphError
from m365emulator.graph import emulator_of, json_body, mailbox_user, param, respond

if TYPE_CHECKING:
    from m365emulator.core import Emulator

log = logging.getLogger("m365emulator.mailboxes")

CALENDAR_ROLES = ("Calendars.ReadWrite",)
ID_TYPES = ("entryId", "ewsId", "immutableEntryId", "restId", "restImmutableEntryId")


@dataclass(frozen=True)
class CalendarParts:
    mailbox_owner: Callable[..., Any]
    store_class: Callable[..., Any]
    add_routes: Callable[[web.Application, Any], None]


def load_calendar() -> CalendarParts | None:
    try:
        model = importlib.import_module("m365emulator.calendar.model")
        store = importlib.import_module("m365emulator.calendar.store")
        routes = importlib.import_module("m365emulator.calendar.routes")
        return CalendarParts(model.MailboxOwner, store.CalendarStore, routes.add_calendar_routes)
    except ImportError as exc:
        log.warning("calendar part not available (%s): events, calendarView and delta are off", exc)
        return None
    except Exception:
        log.exception("the calendar part failed to load: events, calendarView and delta are off")
        return None


class Mailboxes:
    def __init__(self, emu: Emulator, parts: CalendarParts | None) -> None:
        self.emu = emu
        self.parts = parts
        self._stores: dict[str, Any] = {}

    @property
    def available(self) -> bool:
        return self.parts is not None

    def reset(self) -> None:
        self._stores.clear()

    def store(self, user: User) -> Any:
        """The user's CalendarStore, created on first use."""
        found = self._stores.get(user.id)
        if found is not None:
            return found
        if self.parts is None:
            raise GraphError(501, "NotImplemented", "The emulator was started without its calendar part.")
        owner = self.parts.mailbox_owner(
            tenant_id=user.tenant_id,
            user_id=user.id,
            upn=user.upn,
            mail=user.mail,
            display_name=user.display_name,
            time_zone=user.time_zone,
        )
        subscriptions = self.emu.subscriptions
        tenant_id, user_id = user.tenant_id, user.id

        def on_change(change: Any) -> None:
            subscriptions.notify(
                tenant_id, user_id, "events", change.change_type, change.event_id, etag=change.etag
            )

        store = self.parts.store_class(owner, self.emu.clock, on_change, router=self._router(user.tenant_id))
        self._stores[user.id] = store
        return store

    def _router(self, tenant_id: str) -> Callable[[str], Any]:
        """Meeting delivery: an attendee address → the calendar of the tenant's mailbox receiving mail
        there (UPN, mail or SMTP proxy, any case; O(1)), or None (external, unknown, no mailbox)."""

        def route(address: str) -> Any:
            user = self.emu.directory.user_by_address(tenant_id, address)
            if user is None or not user.mailbox_enabled:
                return None
            return self.store(user)

        return route

    def peek(self, user: User) -> Any | None:
        return self._stores.get(user.id)

    def event_count(self) -> int:
        return sum(int(s.event_count()) for s in self._stores.values())

    def expire_delta_tokens(self, user: User | None = None) -> int:
        stores = [self._stores[user.id]] if user and user.id in self._stores else []
        if user is None:
            stores = list(self._stores.values())
        return sum(int(s.expire_delta_tokens()) for s in stores)

    async def resolve(self, request: web.Request, user_ref: str) -> Any:
        """The `MailboxResolver` handed to the calendar routes."""
        return self.store(mailbox_user(request, user_ref, CALENDAR_ROLES))


REST_TARGETS = ("restId", "restImmutableEntryId")


def _rest_id_of(store: Any, source_id: str, source: str) -> str | None:
    """The REST id of an existing item named by an id of type `source` (None: no such item)."""
    from m365emulator.calendar import ids  # the calendar part is loaded when a store exists

    if source == "ewsId":
        found: str | None = store.find_by_ews_id(source_id)
        return found
    rest = ids.rest_id(source_id)
    if (source == "restId") != (rest == source_id):
        return None  # a REST id given as immutable, or the other way round
    found = store.find_by_ews_id(ids.ews_id(rest))
    return found


def _as_target(rest_id: str, target: str) -> str:
    """`restImmutableEntryId` is the item's immutable id, a string distinct from its REST id (Graph's
    outlook-immutable-id: it stays the same when the item moves to another folder)."""
    from m365emulator.calendar import ids

    return ids.immutable_id(rest_id) if target == "restImmutableEntryId" else rest_id


async def translate_exchange_ids(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    user = mailbox_user(
        request,
        request.match_info["user"],
        ("User.Read.All", "User.ReadBasic.All", "Calendars.ReadWrite", "Directory.Read.All"),
    )
    body = await json_body(request)
    inputs = param(body, "inputIds")
    source = param(body, "sourceIdType")
    target = param(body, "targetIdType")
    if not isinstance(inputs, list) or not inputs or not all(isinstance(i, str) for i in inputs):
        raise GraphError(400, "ErrorInvalidParameter", "The parameter 'InputIds' is required.")
    if len(inputs) > 1000:
        raise GraphError(400, "ErrorInvalidParameter", "At most 1000 ids can be translated at once.")
    if source not in ID_TYPES or target not in ID_TYPES:
        raise GraphError(
            400, "ErrorInvalidParameter", "sourceIdType and targetIdType must be exchangeIdFormat values."
        )
    if source not in ("ewsId", "restId", "restImmutableEntryId") or target not in REST_TARGETS:
        raise GraphError(
            400,
            "ErrorInvalidParameter",
            "The emulator translates ewsId, restId or restImmutableEntryId to restId or "
            "restImmutableEntryId only.",
        )
    store = emu.mailboxes.peek(user)
    value: list[dict[str, Any]] = []
    for source_id in inputs:
        rest_id = _rest_id_of(store, source_id, source) if store is not None else None
        if rest_id is None:
            value.append(
                {
                    "sourceId": source_id,
                    "errorDetails": {
                        "code": "ErrorInvalidIdMalformed",
                        "message": "Id is malformed.",
                    },
                }
            )
        else:
            value.append({"sourceId": source_id, "targetId": _as_target(rest_id, target)})
    return respond(
        {
            "@odata.context": f"{emu.graph_url}/$metadata#Collection(microsoft.graph.convertIdResult)",
            "value": value,
        }
    )


def add_routes(app: web.Application, mailboxes: Mailboxes) -> None:
    app.router.add_post("/v1.0/users/{user}/translateExchangeIds", translate_exchange_ids)
    app.router.add_post("/v1.0/users/{user}/microsoft.graph.translateExchangeIds", translate_exchange_ids)
    if mailboxes.parts is not None:
        try:
            mailboxes.parts.add_routes(app, mailboxes.resolve)
        except Exception:
            log.exception("the calendar part failed to add its routes")
