"""Delivery of change and lifecycle notifications: real HTTP POSTs, batched, retried, and bent by rules.

- Notifications for one URL that arrive within `delivery_batch_window_ms` go out in one POST
  (`{"value": [...]}`), up to `delivery_max_batch` per POST.
- A POST that fails (non-2xx, connection error) or is slower than `delivery_timeout_s` (Graph's
  3-second budget) is retried with exponential backoff from `delivery_retry_base_s`, up to
  `delivery_max_retries` times, each retry with a 10-second timeout (contract §5.6). Backoff runs
  in real time, so tests shorten it through the settings.
- Rules from the control surface drop, duplicate, delay or reorder the next matching notifications.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp

from m365emulator.directory import new_id
from m365emulator.settings import Settings
from m365emulator.stats import Stats

log = logging.getLogger("m365emulator.notifications")

Kind = Literal["change", "lifecycle"]
RETRY_TIMEOUT_S = 10.0
VALIDATION_FAILED_STATUS = (
    "Subscription validation request failed. "
    "Notification endpoint must respond with 200 OK to validation request."
)
VALIDATION_FAILED_ECHO = (
    "Subscription validation request failed. Response must exactly match validationToken query parameter."
)
VALIDATION_TIMED_OUT = "Subscription validation request timed out."


@dataclass
class NotificationRule:
    id: str
    action: Literal["drop", "duplicate", "delay", "reorder"]
    count: int = 1
    delay_ms: float = 0
    subscription_id: str | None = None
    change_type: str | None = None
    kind: Literal["change", "lifecycle", "any"] = "change"
    fired: int = 0
    held: list[tuple[str, dict[str, Any], Kind]] = field(default_factory=list)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> NotificationRule:
        allowed = {"action", "count", "delay_ms", "subscription_id", "change_type", "kind"}
        unknown = set(body) - allowed
        if unknown:
            raise ValueError(f"unknown rule fields {sorted(unknown)}")
        rule = cls(id=new_id(), **body)
        if rule.action not in ("drop", "duplicate", "delay", "reorder"):
            raise ValueError("action must be drop, duplicate, delay or reorder")
        if rule.count < 1 or (rule.action == "reorder" and rule.count < 2):
            raise ValueError("count must be at least 1 (2 to reorder)")
        if rule.kind not in ("change", "lifecycle", "any"):
            raise ValueError("kind must be change, lifecycle or any")
        return rule

    def matches(self, item: dict[str, Any], kind: Kind) -> bool:
        if self.fired >= self.count:
            return False
        if self.kind not in ("any", kind):
            return False
        if self.subscription_id and item.get("subscriptionId") != self.subscription_id:
            return False
        return not (self.change_type and item.get("changeType") != self.change_type)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "action": self.action,
            "count": self.count,
            "delay_ms": self.delay_ms,
            "subscription_id": self.subscription_id,
            "change_type": self.change_type,
            "kind": self.kind,
            "fired": self.fired,
        }


def with_query(url: str, extra: dict[str, str]) -> str:
    """The URL with `extra` appended to its query (the notificationUrl's own query is kept)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(extra.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


class Dispatcher:
    def __init__(self, settings: Settings, stats: Stats) -> None:
        self._settings = settings
        self._stats = stats
        self._session: aiohttp.ClientSession | None = None
        self._pending: dict[str, list[dict[str, Any]]] = {}
        self._flushers: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.rules: list[NotificationRule] = []
        self.deliveries: deque[dict[str, Any]] = deque(maxlen=500)

    async def start(self) -> None:
        if self._session is None:
            # Receivers are the developer's own endpoints (usually plain http on loopback).
            connector = aiohttp.TCPConnector(ssl=False, limit=200)
            self._session = aiohttp.ClientSession(connector=connector)

    async def close(self) -> None:
        await self.cancel_all()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def cancel_all(self) -> None:
        tasks = list(self._tasks) + list(self._flushers.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        self._flushers.clear()
        self._pending.clear()

    def reset(self) -> None:
        self.rules.clear()
        self.deliveries.clear()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("dispatcher not started")
        return self._session

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # rules and queueing --------------------------------------------------------------------------
    def add_rule(self, body: dict[str, Any]) -> NotificationRule:
        rule = NotificationRule.from_json(body)
        self.rules.append(rule)
        return rule

    def send(self, url: str, item: dict[str, Any], kind: Kind) -> None:
        """Queue one notification for `url`, after the control rules had their say."""
        for rule in self.rules:
            if not rule.matches(item, kind):
                continue
            rule.fired += 1
            if rule.action == "drop":
                self._stats.notifications_dropped += 1
                self._cleanup_rules()
                return
            if rule.action == "duplicate":
                self._stats.notifications_duplicated += 1
                self._queue(url, item)
                self._queue(url, dict(item))
                self._cleanup_rules()
                return
            if rule.action == "delay":
                self._spawn(self._later(rule.delay_ms / 1000, url, item))
                self._cleanup_rules()
                return
            rule.held.append((url, item, kind))
            if rule.fired >= rule.count:
                self._stats.notifications_reordered += len(rule.held)
                for held_url, held_item, _ in reversed(rule.held):
                    self._queue(held_url, held_item)
                rule.held.clear()
                self._cleanup_rules()
            return
        self._queue(url, item)

    def _cleanup_rules(self) -> None:
        self.rules = [r for r in self.rules if r.fired < r.count or r.held]

    async def _later(self, delay_s: float, url: str, item: dict[str, Any]) -> None:
        await asyncio.sleep(delay_s)
        self._queue(url, item)

    def _queue(self, url: str, item: dict[str, Any]) -> None:
        self._pending.setdefault(url, []).append(item)
        if url not in self._flushers:
            task = asyncio.ensure_future(self._flush(url))
            self._flushers[url] = task

    async def _flush(self, url: str) -> None:
        try:
            await asyncio.sleep(self._settings.delivery_batch_window_ms / 1000)
        finally:
            self._flushers.pop(url, None)
        items = self._pending.pop(url, [])
        size = max(1, self._settings.delivery_max_batch)
        for start in range(0, len(items), size):
            self._spawn(self._deliver(url, items[start : start + size]))

    # delivery ------------------------------------------------------------------------------------
    async def _deliver(self, url: str, items: list[dict[str, Any]]) -> None:
        attempt = 0
        while True:
            timeout = self._settings.delivery_timeout_s if attempt == 0 else RETRY_TIMEOUT_S
            ok, status, elapsed = await self._post(url, items, timeout)
            self._stats.notification_posts += 1
            self.deliveries.append(
                {
                    "url": url,
                    "count": len(items),
                    "attempt": attempt,
                    "status": status,
                    "ok": ok,
                    "elapsed_ms": round(elapsed * 1000, 1),
                    "ids": [i.get("subscriptionId") for i in items],
                }
            )
            if ok:
                self._stats.notifications_sent += len(items)
                return
            self._stats.notifications_failed += len(items)
            if attempt >= self._settings.delivery_max_retries:
                log.warning("giving up on %d notification(s) to %s", len(items), url)
                return
            self._stats.notifications_retried += len(items)
            await asyncio.sleep(self._settings.delivery_retry_base_s * 2**attempt)
            attempt += 1

    async def _post(
        self, url: str, items: list[dict[str, Any]], budget_s: float
    ) -> tuple[bool, int | None, float]:
        started = time.monotonic()
        try:
            async with self.session.post(
                url,
                json={"value": items},
                headers={"client-request-id": str(uuid.uuid4())},
                timeout=aiohttp.ClientTimeout(total=budget_s),
            ) as resp:
                await resp.read()
                return 200 <= resp.status < 300, resp.status, time.monotonic() - started
        except (aiohttp.ClientError, TimeoutError, OSError):
            return False, None, time.monotonic() - started

    # validation handshake ------------------------------------------------------------------------
    async def validate(self, url: str) -> str | None:
        """Graph's handshake (contract §5.4): None when the endpoint echoed the token, else why not."""
        self._stats.validations += 1
        token = (
            f"Validation: Testing client application reachability for subscription Request-Id: {uuid.uuid4()}"
        )
        target = with_query(url, {"validationToken": token})
        try:
            async with self.session.post(
                target,
                data=b"",
                headers={"Content-Type": "text/plain; charset=utf-8"},
                timeout=aiohttp.ClientTimeout(total=self._settings.validation_timeout_s),
            ) as resp:
                body = await resp.text()
                if resp.status != 200:
                    return VALIDATION_FAILED_STATUS
                if body != token:
                    return VALIDATION_FAILED_ECHO
                return None
        except TimeoutError:
            return VALIDATION_TIMED_OUT
        except (aiohttp.ClientError, OSError):
            return VALIDATION_FAILED_STATUS
