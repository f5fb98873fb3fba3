"""The emulator's state and services in one object: the composition root every surface reads."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable
from dataclasses import fields
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from m365emulator.clock import Clock
from m365emulator.directory import Directory
from m365emulator.errors import GraphError
from m365emulator.faults import DEFAULT_CODES, FaultRule, Faults
from m365emulator.graph import error_response, respond, throttle_body
from m365emulator.keyvault import Vault
from m365emulator.mail.model import MailStore
from m365emulator.mailboxes import Mailboxes, load_calendar
from m365emulator.notifications import Dispatcher
from m365emulator.settings import Settings
from m365emulator.stats import Stats
from m365emulator.subscriptions import SubscriptionService
from m365emulator.throttling import Throttle
from m365emulator.todo import TodoService
from m365emulator.tokens import TokenIssuer

log = logging.getLogger("m365emulator")


class Emulator:
    def __init__(self, settings: Settings | None = None, *, clock_file: Path | None = None) -> None:
        self.clock = Clock(clock_file)
        self.settings = settings or Settings()
        self._startup_settings = Settings(
            **{f.name: getattr(self.settings, f.name) for f in fields(Settings)}
        )
        self.stats = Stats()
        self.directory = Directory()
        self.issuer = TokenIssuer("")
        self.faults = Faults()
        self.throttle = Throttle(self.settings, self.clock)
        self.dispatcher = Dispatcher(self.settings, self.stats)
        self.subscriptions = SubscriptionService(self)
        self.todo = TodoService(self)
        self.mailboxes = Mailboxes(self, load_calendar())
        self.vault = Vault()
        self.outbox: list[dict[str, Any]] = []
        self.mail = MailStore(self.settings, self.clock)
        self.meetings: dict[tuple[str, str], dict[str, Any]] = {}
        self.meetings_by_external: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.authority = ""
        self.graph_url = ""
        self.keyvault_url = ""
        self.control_url = ""
        self.ca_file = ""
        self.seed_name = "empty"
        self.seed_info: dict[str, Any] = {}
        self.reseed: Callable[[Emulator], dict[str, Any]] | None = None
        self._loopback: aiohttp.ClientSession | None = None
        self._ticker: asyncio.Task[None] | None = None

    # lifecycle -----------------------------------------------------------------------------------
    def set_urls(self, host: str, port: int, kv_port: int) -> None:
        self.authority = f"https://{host}:{port}"
        self.graph_url = f"{self.authority}/v1.0"
        self.keyvault_url = f"https://{host}:{kv_port}"
        self.control_url = f"{self.authority}/_emulator"
        self.issuer.authority = self.authority

    async def start(self, ca_file: str) -> None:
        self.ca_file = ca_file
        context = ssl.create_default_context(cafile=ca_file)
        self._loopback = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context, limit=100))
        await self.dispatcher.start()
        self._ticker = asyncio.ensure_future(self._tick_forever())

    async def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        await self.dispatcher.close()
        if self._loopback is not None:
            await self._loopback.close()

    @property
    def loopback(self) -> aiohttp.ClientSession:
        """A client that trusts the emulator's CA, for `$batch` items run through the full pipeline."""
        if self._loopback is None:
            raise RuntimeError("emulator not started")
        return self._loopback

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(max(0.05, self.settings.lifecycle_check_interval_s))
            try:
                self.subscriptions.tick()
            except Exception:
                log.exception("lifecycle check failed")

    # clock ---------------------------------------------------------------------------------------
    def advance_clock(self, delta: timedelta) -> None:
        self.clock.advance(delta)
        self.subscriptions.tick()

    # faults --------------------------------------------------------------------------------------
    def render_fault(self, rule: FaultRule, surface: str, request_id: str) -> web.Response:
        status = rule.status or 500
        headers = dict(rule.headers)
        if rule.retry_after is not None:
            headers["Retry-After"] = str(int(rule.retry_after))
        if surface == "graph":
            date = self.clock.now().strftime("%Y-%m-%dT%H:%M:%S")
            if status == 429 and rule.code is None:
                return respond(throttle_body(request_id, date), 429, headers)
            code = rule.code or DEFAULT_CODES.get(status, "generalException")
            message = rule.message or f"Injected fault {status}."
            return error_response(GraphError(status, code, message, headers), request_id, date)
        if surface == "keyvault":
            body: dict[str, Any] = {
                "error": {
                    "code": rule.code or DEFAULT_CODES.get(status, "InternalError"),
                    "message": rule.message or "",
                }
            }
            return respond(body, status, headers)
        body = {
            "error": rule.code or "temporarily_unavailable",
            "error_description": f"AADSTS50196: {rule.message or 'Injected fault.'}",
            "error_codes": [50196],
        }
        return respond(body, status, headers)

    # reset ---------------------------------------------------------------------------------------
    async def reset(self, *, data: bool = False, subscriptions: bool = True) -> None:
        """Runtime state back to start: faults, notification rules, queued deliveries, clock, stats,
        throttling, settings. With `subscriptions`, subscriptions too; with `data`, everything
        (directory, mailboxes, vault...) is rebuilt from the seed with the same ids and secrets."""
        self.faults.clear()
        await self.dispatcher.cancel_all()
        self.dispatcher.reset()
        self.clock.reset()
        self.stats.reset()
        self.throttle.reset()
        self.mail.reset(data=data)
        self.issuer.forget_revocations()
        for f in fields(Settings):
            setattr(self.settings, f.name, getattr(self._startup_settings, f.name))
        if subscriptions or data:
            self.subscriptions.reset()
        if data:
            self.directory = Directory()
            self.vault.reset()
            self.todo.reset()
            self.mailboxes.reset()
            self.outbox.clear()
            self.meetings.clear()
            self.meetings_by_external.clear()
            if self.reseed is not None:
                self.seed_info = self.reseed(self)
