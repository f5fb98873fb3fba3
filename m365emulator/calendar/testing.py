"""A bare aiohttp app serving only the calendar routes, for tests that don't need the whole emulator.

No auth, no throttling: the resolver maps a user reference (id, UPN or mail, case-insensitive) to
its store, and a tiny middleware renders `GraphError` the way the core server does. Meetings are
delivered between the owners of one tenant (by UPN or mail), as the emulator's directory does.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from aiohttp import web

from m365emulator.calendar.model import ChangeEvent, MailboxOwner
from m365emulator.calendar.routes import add_calendar_routes
from m365emulator.calendar.store import CalendarStore
from m365emulator.clock import Clock
from m365emulator.errors import GraphError


class Harness:
    def __init__(self, owners: list[MailboxOwner], clock: Clock | None = None) -> None:
        self.clock = clock or Clock()
        self.changes: list[tuple[str, ChangeEvent]] = []
        self.stores: dict[str, CalendarStore] = {}
        self._refs: dict[str, CalendarStore] = {}
        for owner in owners:
            store = CalendarStore(
                owner, self.clock, self._recorder(owner.user_id), router=self._router(owner.tenant_id)
            )
            self.stores[owner.user_id] = store
            for ref in (owner.user_id, owner.upn, owner.mail):
                if ref:
                    self._refs[ref.lower()] = store

    def _router(self, tenant_id: str) -> Callable[[str], CalendarStore | None]:
        def route(address: str) -> CalendarStore | None:
            store = self._refs.get(address.strip().lower())
            if store is None or store.owner.tenant_id != tenant_id or "@" not in address:
                return None
            return store

        return route

    def _recorder(self, user_id: str) -> Callable[[ChangeEvent], None]:
        return lambda change: self.changes.append((user_id, change))

    async def resolve(self, request: web.Request, user_ref: str) -> CalendarStore:
        store = self._refs.get(user_ref.lower())
        if store is None:
            raise GraphError(404, "ErrorInvalidUser", f"The requested user '{user_ref}' is invalid.")
        return store

    def app(self) -> web.Application:
        @web.middleware
        async def render_errors(
            request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
        ) -> web.StreamResponse:
            try:
                return await handler(request)
            except GraphError as exc:
                request_id = str(uuid.uuid4())
                body = exc.body(request_id, datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"))
                return web.Response(
                    status=exc.status,
                    text=json.dumps(body),
                    content_type="application/json",
                    headers=exc.headers,
                )

        app = web.Application(middlewares=[render_errors])
        add_calendar_routes(app, self.resolve)
        return app
