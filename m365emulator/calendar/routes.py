"""aiohttp routes of the calendar: `/v1.0/users/{user}/events`, `calendarView`, delta, instances, cancel,
and the meeting responses `accept`, `tentativelyAccept`, `decline` (202, see invitations.py).

The core server's middleware has done auth, throttling, faults and percent-decoding; it may have
parsed `Prefer` into `request["prefer"]` (lower-case keys, unquoted values). Without it the
header is parsed here (kiota folds several preferences into one comma-separated header).

Paging: lists and calendar views page with `$top` (default 10, as Outlook; `Prefer:
odata.maxpagesize` is honoured when there is no `$top`; at most 1000) and `$skip` in an absolute
`@odata.nextLink`. calendarView delta pages with `Prefer: odata.maxpagesize` (default 100, at
most 1000) and opaque `$skiptoken`/`$deltatoken` links (see delta.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from aiohttp import web

from m365emulator.calendar import ids
from m365emulator.calendar.delta import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, removed_item
from m365emulator.calendar.model import Instance, StoredEvent
from m365emulator.calendar.query import (
    Record,
    apply_select,
    compile_filter,
    parse_expand,
    parse_orderby,
    parse_select,
)
from m365emulator.calendar.render import View, render
from m365emulator.calendar.store import CalendarStore
from m365emulator.calendar.timezones import UTC_ZONE, find_zone, localize, parse_instant
from m365emulator.errors import GraphError

LIST_PAGE_SIZE = 10
WINDOW_REQUIRED = (
    "This request requires a time window specified by the query string parameters StartDateTime "
    "and EndDateTime."
)


class MailboxResolver(Protocol):
    async def __call__(self, request: web.Request, user_ref: str) -> CalendarStore: ...


# ------------------------------------------------------------------------------------- request bits


def parse_prefer(values: list[str]) -> dict[str, str]:
    """`Prefer` header(s) → {lower-case key: unquoted value}."""
    out: dict[str, str] = {}
    for header in values:
        for part in _split_commas(header):
            key, _, value = part.strip().partition("=")
            if not key.strip():
                continue
            out[key.strip().lower()] = value.strip().strip('"')
    return out


def _split_commas(text: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def _prefer(request: web.Request) -> dict[str, str]:
    try:
        parsed = request.get("prefer")
    except (KeyError, TypeError):
        parsed = None
    if isinstance(parsed, dict) and parsed:
        return {str(k).lower(): str(v) for k, v in parsed.items()}
    return parse_prefer(request.headers.getall("Prefer", []))


def _query(request: web.Request) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in request.query.items():
        name = key.lower()
        out[name] = value
        if not name.startswith("$"):
            out.setdefault("$" + name, value)
    return out


class Context:
    """What one request asks for: output zone, expansions, selection, paging preferences."""

    def __init__(self, request: web.Request, store: CalendarStore) -> None:
        self.request = request
        self.store = store
        self.prefer = _prefer(request)
        self.query = _query(request)
        self.applied: list[str] = []
        zone_label = self.prefer.get("outlook.timezone")
        zone = find_zone(zone_label) if zone_label else None
        ext_ids, ext_all = parse_expand(self.query.get("$expand"))
        body_type = self.prefer.get("outlook.body-content-type", "").lower() or None
        if body_type not in ("text", "html"):
            body_type = None  # an unknown value is ignored, like an unknown zone
        # `IdType="ImmutableId"`: ids in the answer are the items' immutable ids (outlook-immutable-id).
        self.immutable_ids = self.prefer.get("idtype", "").lower() == "immutableid"
        if zone is not None and zone_label:
            self.applied.append(f'outlook.timezone="{zone_label}"')
            self.view = View(store.owner, zone, zone_label, ext_ids, ext_all, body_type, self.immutable_ids)
        else:
            self.view = View(store.owner, UTC_ZONE, "UTC", ext_ids, ext_all, body_type, self.immutable_ids)
        if body_type is not None:
            self.applied.append(f'outlook.body-content-type="{body_type}"')
        self.select = parse_select(self.query.get("$select"))
        self.origin = str(request.url.origin())
        self.user = request.match_info.get("user", "")

    def render(self, ev: StoredEvent, day: Any = None) -> dict[str, Any]:
        return render(ev, self.view, occurrence_of=day)

    def render_instance(self, inst: Instance) -> dict[str, Any]:
        day = inst.original_date if inst.event.kind == "seriesMaster" else None
        return self.render(inst.event, day)

    def headers(self, *extra: str) -> dict[str, str]:
        applied = [*self.applied, *extra]
        return {"Preference-Applied": ", ".join(applied)} if applied else {}

    def entity(self, item: dict[str, Any], status: int = 200) -> web.Response:
        body = {"@odata.context": f"{self.origin}/v1.0/$metadata#users('{self.user}')/events/$entity"}
        body.update(apply_select(item, self.select))
        return web.json_response(body, status=status, headers=self.headers(), dumps=_dumps)

    def page_size(self) -> tuple[int, int]:
        top_raw = self.query.get("$top")
        skip_raw = self.query.get("$skip") or "0"
        try:
            top = int(top_raw or self.prefer.get("odata.maxpagesize") or LIST_PAGE_SIZE)
            skip = int(skip_raw)
        except ValueError:
            raise GraphError(400, "BadRequest", "Invalid value for $top or $skip.") from None
        if top < 0 or skip < 0:
            raise GraphError(400, "BadRequest", "Invalid value for $top or $skip.")
        return max(1, min(top, MAX_PAGE_SIZE)), skip

    def collection(self, items: list[dict[str, Any]], skip: int, top: int, more: bool) -> web.Response:
        body: dict[str, Any] = {
            "@odata.context": f"{self.origin}/v1.0/$metadata#users('{self.user}')/events",
            "value": [apply_select(i, self.select) for i in items],
        }
        if more:
            url = self.request.url.update_query({"$top": str(top), "$skip": str(skip + top)})
            body["@odata.nextLink"] = str(url)
        return web.json_response(body, headers=self.headers(), dumps=_dumps)

    def record(self, ev: StoredEvent, day: Any = None) -> Record:
        utc_view = View(self.store.owner, immutable_ids=self.immutable_ids)
        return Record(lambda: render(ev, utc_view, occurrence_of=day), ev.ext)

    def window(self) -> tuple[datetime, datetime]:
        start = self.query.get("startdatetime") or ""
        end = self.query.get("enddatetime") or ""
        if not start.strip() or not end.strip():
            raise GraphError(400, "ErrorInvalidParameter", WINDOW_REQUIRED)
        return parse_instant(start, "startDateTime"), parse_instant(end, "endDateTime")


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


async def _json_body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        raise GraphError(400, "BadRequest", "Empty Payload. JSON content expected.")
    try:
        body = json.loads(raw)
    except ValueError:
        raise GraphError(
            400,
            "BadRequest",
            "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of "
            "valid JSON format.",
        ) from None
    if not isinstance(body, dict):
        raise GraphError(400, "BadRequest", "Unable to read JSON request payload.")
    return body


def _sort_key(path: str) -> Callable[[tuple[StoredEvent, Any, datetime]], Any]:
    low = path.lower()
    if low in ("start/datetime", "start"):
        return lambda t: t[2]
    if low == "createddatetime":
        return lambda t: t[0].created
    if low == "lastmodifieddatetime":
        return lambda t: t[0].modified
    if low == "subject":
        return lambda t: t[0].subject.casefold()
    if low in ("end/datetime", "end"):
        return lambda t: localize(t[0].end, t[0].end_zone)
    raise GraphError(400, "BadRequest", f"The $orderby property '{path}' is not supported.")


# ------------------------------------------------------------------------------------- handlers


class _Handlers:
    def __init__(self, resolve: MailboxResolver) -> None:
        self.resolve = resolve

    async def ctx(self, request: web.Request) -> Context:
        store = await self.resolve(request, request.match_info["user"])
        return Context(request, store)

    async def list_events(self, request: web.Request) -> web.Response:
        c = await self.ctx(request)
        top, skip = c.page_size()
        rows = [(ev, None, localize(ev.start, ev.start_zone)) for ev in c.store.list_events()]
        if c.query.get("$filter"):
            keep = compile_filter(c.query["$filter"])
            rows = [r for r in rows if keep(c.record(r[0]))]
        for path, desc in reversed(parse_orderby(c.query.get("$orderby"))):
            rows.sort(key=_sort_key(path), reverse=desc)
        page = rows[skip : skip + top]
        return c.collection([c.render(ev) for ev, _, _ in page], skip, top, skip + top < len(rows))

    async def create_event(self, request: web.Request) -> web.Response:
        c = await self.ctx(request)
        ev = c.store.create(await _json_body(request))
        return c.entity(c.render(ev), status=201)

    async def get_event(self, request: web.Request) -> web.Response:
        c = await self.ctx(request)
        ev, day = c.store.get(request.match_info["id"])
        return c.entity(c.render(ev, day))

    async def patch_event(self, request: web.Request) -> web.Response:
        c = await self.ctx(request)
        body = await _json_body(request)
        ev, day = c.store.update(request.match_info["id"], body, request.headers.get("If-Match"))
        return c.entity(c.render(ev, day))

    async def delete_event(self, request: web.Request) -> web.Response:
        c = await self.ctx(request)
        c.store.delete(request.match_info["id"], request.headers.get("If-Match"))
        return web.Response(status=204)

    async def cancel_event(self, request: web.Request) -> web.Response:
        c = await self.ctx(request)
        c.store.cancel(request.match_info["id"])
        return web.Response(status=202)

    def respond(self, action: str) -> Callable[[web.Request], Any]:
        async def handler(request: web.Request) -> web.Response:
            c = await self.ctx(request)
            raw = await request.read()
            body = await _json_body(request) if raw.strip() else {}
            c.store.respond(request.match_info["id"], action, body)
            return web.Response(status=202)

        return handler

    @staticmethod
    def instances_page(c: Context, found: list[Instance]) -> web.Response:
        top, skip = c.page_size()
        if c.query.get("$filter"):
            keep = compile_filter(c.query["$filter"])
            found = [
                i
                for i in found
                if keep(c.record(i.event, i.original_date if i.event.kind == "seriesMaster" else None))
            ]
        for path, desc in reversed(parse_orderby(c.query.get("$orderby"))):
            key = _sort_key(path)

            def by(i: Instance, key: Callable[[tuple[StoredEvent, Any, datetime]], Any] = key) -> Any:
                return key((i.event, None, i.start_utc))

            found.sort(key=by, reverse=desc)
        page = found[skip : skip + top]
        return c.collection([c.render_instance(i) for i in page], skip, top, skip + top < len(found))

    async def calendar_view(self, request: web.Request) -> web.Response:
        c = await self.ctx(request)
        start, end = c.window()
        return self.instances_page(c, c.store.view(start, end) if start < end else [])

    async def instances(self, request: web.Request) -> web.Response:
        c = await self.ctx(request)
        start, end = c.window()
        ev, day = c.store.get(request.match_info["id"])
        if day is not None or ev.kind != "seriesMaster" or start >= end:
            return self.instances_page(c, [])
        found = c.store.instances_of(ev, start, end)
        found.sort(key=lambda i: (i.start_utc, i.id))
        return self.instances_page(c, found)

    async def delta(self, request: web.Request) -> web.Response:
        c = await self.ctx(request)
        tracker = c.store.delta
        q = c.query
        if q.get("$skiptoken"):
            rnd, offset = tracker.continue_round(q["$skiptoken"])
        elif q.get("$deltatoken"):
            rnd, offset = tracker.resume(q["$deltatoken"]), 0
        else:
            start, end = c.window()
            rnd, offset = tracker.start_round(start.astimezone(UTC), end.astimezone(UTC)), 0
        try:
            size = int(c.prefer.get("odata.maxpagesize") or DEFAULT_PAGE_SIZE)
        except ValueError:
            size = DEFAULT_PAGE_SIZE
        page = tracker.page(rnd, offset, max(1, min(size, MAX_PAGE_SIZE)))
        value: list[dict[str, Any]] = []
        for entry, target, day in page.items:
            if target is None:
                removed = ids.immutable_id(entry.instance_id) if c.immutable_ids else entry.instance_id
                value.append(removed_item(removed))
            else:
                value.append({"@odata.type": "#microsoft.graph.event", **c.render(target, day)})
        base = str(request.url.with_query(None))
        body: dict[str, Any] = {"@odata.context": f"{c.origin}/v1.0/$metadata#Collection(event)"}
        if page.next_token is not None:
            body["@odata.nextLink"] = f"{base}?$skiptoken={page.next_token}"
        else:
            body["@odata.deltaLink"] = f"{base}?$deltatoken={page.delta_token}"
        body["value"] = value
        return web.json_response(body, headers=c.headers("odata.track-changes"), dumps=_dumps)


def add_calendar_routes(app: web.Application, resolve: MailboxResolver) -> None:
    h = _Handlers(resolve)
    user = "/v1.0/users/{user}"
    for prefix in (f"{user}/events", f"{user}/calendar/events"):
        app.router.add_get(prefix, h.list_events)
        app.router.add_post(prefix, h.create_event)
        app.router.add_get(prefix + "/{id}", h.get_event)
        app.router.add_patch(prefix + "/{id}", h.patch_event)
        app.router.add_delete(prefix + "/{id}", h.delete_event)
        app.router.add_get(prefix + "/{id}/instances", h.instances)
        app.router.add_post(prefix + "/{id}/cancel", h.cancel_event)
        app.router.add_post(prefix + "/{id}/microsoft.graph.cancel", h.cancel_event)
        for action in ("accept", "tentativelyAccept", "decline"):
            handler = h.respond(action)
            app.router.add_post(f"{prefix}/{{id}}/{action}", handler)
            app.router.add_post(f"{prefix}/{{id}}/microsoft.graph.{action}", handler)
    for view in (f"{user}/calendarView", f"{user}/calendar/calendarView"):
        app.router.add_get(view, h.calendar_view)
        for name in ("delta", "delta()", "microsoft.graph.delta", "microsoft.graph.delta()"):
            app.router.add_get(f"{view}/{name}", h.delta)
