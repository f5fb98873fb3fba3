"""At most four Graph requests at once per mailbox, whatever asks and on whichever worker: Exchange
answers a fifth concurrent request on one mailbox with 429 (MailboxConcurrency, contract §6.1).

In a worker, a semaphore per mailbox keeps four. Across workers (Azure Functions runs the sync queue's and
the write queue's functions on instances of their own, and more of each as queues grow), a worker
claims a mailbox before its first request there (`MailboxClaims`, a row in Table Storage), keeps the
claim while its requests on the mailbox follow one another (`linger` seconds after the last one), and
lets go: so one worker at a time sends requests to a mailbox, four at most. A queue job's requests run
inside `job()`: when the job ends, the claims on the mailboxes it used that no request holds now are let
go at once, not `linger` seconds later (the next job on the mailbox is often on another worker: the sync
a write's notification brings, or a second notification of the same calendar, and it would wait out the
linger and its own looks, 2-3 s). A worker that meets another's
claim looks again, sooner at first, for up to `max_wait` seconds, then answers `Throttled` (code
`MailboxBusy`) with the time the claim has left, so the job goes back to its queue for that long, as
after a 429. A claim lapses after `ttl` seconds unless renewed (a request starting with less than half
of it left renews it), so a worker killed mid-request strands nobody for long.

The calendar's sync and writes, the task writes and the mail's sends all go through `TenantGraph`,
which holds the gate of the mailbox a request's path names (`/users/{id}/...`) for the request's
duration; a `$batch` whose requests all name one mailbox holds as many of its four slots as Graph runs
at once (up to four). Not held: requests that name no mailbox, a `$batch` across several mailboxes (the
directory's mailbox probes, one request each) and the availability read (`getSchedule` through the SDK).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Final, Protocol
from urllib.parse import unquote, urlsplit

from shared.adapters.graph.errors import Throttled
from shared.observability import get_logger

log = get_logger("graph.mailbox")

MAILBOX_CONCURRENCY: Final = 4
CLAIM_TTL: Final = 60.0  # seconds a claim holds unless renewed
# Seconds a claim is kept after the worker's last request on the mailbox ends: long enough to span the
# storage work a run does between its Graph requests on a loaded worker (a migration's statuses, feed and
# row saves), so that a run costs one claim and one release, not one per burst (0.5 s cost a migrating
# user 2.7 of each on the sync benchmark); short enough that another worker's job waits little more.
LINGER: Final = 2.0
MAX_WAIT: Final = 30.0  # seconds a request waits for another worker's claim before its job is deferred
FIRST_LOOK: Final = 0.1  # seconds before looking again at another worker's claim, doubling to LAST_LOOK
LAST_LOOK: Final = 2.0
SLOW_WAIT: Final = 1.0  # seconds of waiting for another worker's claim worth a log line
_MAILBOX: Final = re.compile(r"/users/([^/?]+)")
# The mailboxes the running queue job sent requests to (`MailboxGate.job`); None outside a job.
_JOB_MAILBOXES: ContextVar[set[str] | None] = ContextVar("job_mailboxes", default=None)


def mailbox_of(path: str) -> str | None:
    """The mailbox a request's path names (a Graph user id or UPN), lower-cased; None for other requests."""
    found = _MAILBOX.search(path)
    return unquote(found[1]).casefold() if found else None


def batch_mailbox(body: Any) -> tuple[str | None, int]:
    """The one mailbox a `$batch` body's requests all name, and how many of them Graph runs at once
    (up to four); (None, 0) when they name several or none."""
    requests = body.get("requests") if isinstance(body, dict) else None
    if not isinstance(requests, list) or not requests:
        return None, 0
    names = {mailbox_of(urlsplit(str(r.get("url", ""))).path) for r in requests if isinstance(r, dict)}
    if len(names) != 1 or None in names:
        return None, 0
    return names.pop(), min(MAILBOX_CONCURRENCY, len(requests))


class MailboxClaims(Protocol):
    """Which worker sends requests to a mailbox (table `mailboxclaims`)."""

    async def claim(self, mailbox: str, worker: str, ttl: float) -> float | None:
        """Claim (or renew) the mailbox for `ttl` seconds: None when the worker holds it now, else the
        seconds another worker's claim has left."""
        ...

    async def release(self, mailbox: str, worker: str) -> None:
        """Let go of the worker's claim (nothing when it lapsed and another worker took it)."""
        ...


@dataclass(eq=False)
class _Mailbox:
    slots: asyncio.Semaphore
    several: asyncio.Lock = field(default_factory=asyncio.Lock)  # one multi-slot taker at a time
    claiming: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0  # requests of this worker on the mailbox, running or waiting
    claimed_until: float = 0.0  # monotonic time the worker's claim lapses (0: not claimed)
    letting_go: asyncio.TimerHandle | None = None


class MailboxGate:
    """Four requests at once per mailbox in this worker, and (with `claims`) one worker at a time."""

    def __init__(
        self,
        limit: int = MAILBOX_CONCURRENCY,
        claims: MailboxClaims | None = None,
        *,
        worker: str | None = None,
        ttl: float = CLAIM_TTL,
        linger: float = LINGER,
        max_wait: float = MAX_WAIT,
    ) -> None:
        self.limit = limit
        self.claims = claims
        self.worker = worker or uuid.uuid4().hex
        self.ttl = ttl
        self.linger = linger
        self.max_wait = max_wait
        self._mailboxes: dict[str, _Mailbox] = {}
        self._releases: set[asyncio.Task[None]] = set()
        self.peak = 0  # the most requests seen at once on one mailbox (for tests and benchmarks)

    @asynccontextmanager
    async def hold(self, path: str, body: Any = None) -> AsyncIterator[None]:
        """Hold the mailbox a request names for its duration (see the module's docstring)."""
        if path.rstrip("/").endswith("/$batch"):
            mailbox, slots = batch_mailbox(body)
        else:
            mailbox, slots = mailbox_of(path), 1
        if mailbox is None:
            yield
            return
        job_mailboxes = _JOB_MAILBOXES.get()
        if job_mailboxes is not None:
            job_mailboxes.add(mailbox)
        state = self._mailboxes.get(mailbox)
        if state is None:
            state = self._mailboxes[mailbox] = _Mailbox(asyncio.Semaphore(self.limit))
        state.users += 1
        if state.letting_go is not None:
            state.letting_go.cancel()
            state.letting_go = None
        taken: list[int] = []
        try:
            if self.claims is not None:
                await self._claim(mailbox, state)
            await self._take(state, slots, taken)
            self.peak = max(self.peak, self.limit - state.slots._value)
            yield
        finally:
            for _ in taken:
                state.slots.release()
            self._done(mailbox, state)

    @asynccontextmanager
    async def job(self) -> AsyncIterator[None]:
        """One queue job's requests: when it ends, the claims on the mailboxes it used that no request of
        this worker holds now are let go at once (another job of this worker between its requests on one
        of them claims it again with its next request)."""
        used: set[str] = set()
        token = _JOB_MAILBOXES.set(used)
        try:
            yield
        finally:
            _JOB_MAILBOXES.reset(token)
            await self._let_go_now(used)

    async def _let_go_now(self, mailboxes: set[str]) -> None:
        for mailbox in mailboxes:
            state = self._mailboxes.get(mailbox)
            if state is None or state.users:
                continue
            if state.letting_go is not None:
                state.letting_go.cancel()
                state.letting_go = None
            await self._release(mailbox, state)

    @staticmethod
    async def _take(state: _Mailbox, slots: int, taken: list[int]) -> None:
        """Take `slots` of the mailbox's four (several only one request at a time, so two never wait
        for each other's half), noting each in `taken`."""
        if slots == 1:
            await state.slots.acquire()
            taken.append(1)
            return
        async with state.several:
            for _ in range(slots):
                await state.slots.acquire()
                taken.append(1)

    def _done(self, mailbox: str, state: _Mailbox) -> None:
        state.users -= 1
        if state.users:
            return
        if state.claimed_until:
            loop = asyncio.get_running_loop()
            state.letting_go = loop.call_later(self.linger, self._let_go, mailbox, state)
        elif self._mailboxes.get(mailbox) is state:
            del self._mailboxes[mailbox]

    async def _claim(self, mailbox: str, state: _Mailbox) -> None:
        assert self.claims is not None
        async with state.claiming:
            if state.claimed_until - time.monotonic() > self.ttl / 2:
                return
            started = time.monotonic()
            look = FIRST_LOOK
            while True:
                asked = time.monotonic()
                left = await self.claims.claim(mailbox, self.worker, self.ttl)
                if left is None:
                    state.claimed_until = asked + self.ttl
                    if (waited := time.monotonic() - started) >= SLOW_WAIT:
                        log.info("mailbox %s: waited %.1f s for another worker's claim", mailbox, waited)
                    return
                if time.monotonic() - started >= self.max_wait:
                    log.info("mailbox %s stays claimed by another worker; the job waits its turn", mailbox)
                    raise Throttled(
                        429, "MailboxBusy", "another worker is sending requests to this mailbox", left
                    )
                await asyncio.sleep(min(look, left) * (0.75 + random.random() / 2))  # noqa: S311
                look = min(LAST_LOOK, look * 2)

    def _let_go(self, mailbox: str, state: _Mailbox) -> None:
        state.letting_go = None
        if state.users:
            return
        task = asyncio.get_running_loop().create_task(self._release(mailbox, state))
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)

    async def _release(self, mailbox: str, state: _Mailbox) -> None:
        async with state.claiming:
            if state.users or not state.claimed_until:
                return  # a request came back meanwhile: the claim stays
            state.claimed_until = 0.0
            if self.claims is not None:
                try:
                    await self.claims.release(mailbox, self.worker)
                except Exception:  # the claim lapses by itself
                    log.warning("could not let go of the claim on mailbox %s", mailbox, exc_info=True)
        if not state.users and state.letting_go is None and self._mailboxes.get(mailbox) is state:
            del self._mailboxes[mailbox]

    async def close(self) -> None:
        """Let go of every claim at once (the worker stops)."""
        await self._let_go_now(set(self._mailboxes))
        if self._releases:
            with contextlib.suppress(Exception):
                await asyncio.gather(*self._releases)
