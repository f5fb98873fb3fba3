"""`LocalHost`: the local function host, in-process.

    host = LocalHost(app_root, "local.settings.json", port=0)
    await host.start()          # indexes the app, serves HTTP, starts timers and queue pollers
    print(host.url, host.function_key)
    await host.stop()           # stops HTTP, pollers and timers, waits for in-flight invocations

`only` makes it run a part of the app (`devhost.scaling` runs the HTTP group in one host and the other
functions in worker processes, each a `LocalHost` with its share): the functions it refuses get no
route, no poller and no timer, and a manual run of one of them (the admin API) goes to `elsewhere`.

Start-up follows the real host's order: app settings into the environment (a variable already set
wins), `host.json`, indexing (`get_functions()` once), then listeners. Anything the local host
cannot honour (an unsupported trigger or binding, a route starting with `admin`, a bad schedule or
queue name, a missing `%SETTING%`) stops the start with a `ConfigError` that says what.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

import azure.functions as func
from aiohttp import web

from devhost.bindings import StorageClients
from devhost.clock import HostClock
from devhost.http import HttpFrontEnd
from devhost.indexer import (
    HttpTriggerSpec,
    IndexedFunction,
    QueueTriggerSpec,
    TimerTriggerSpec,
    index_app,
)
from devhost.invoker import Invoker, thread_count
from devhost.ports import listening_socket
from devhost.queues import DEFAULT_LEASE, QueuePoller, manual_message, trigger_value
from devhost.settings import ConfigError, HostConfig, LocalSettings
from devhost.timers import RetryPolicy, TimerRunner, parse_schedule

log = logging.getLogger("devhost.host")
DEFAULT_PORT: Final = 7071
LOOPBACK: Final = "127.0.0.1"
STORAGE_START_TIMEOUT: Final = 20.0
# `module:function`, called (and awaited) when the host stops: the app closes its clients there. Local
# only: the Python worker has no shutdown hook (azure-functions-python-worker#1521).
ON_STOP_SETTING: Final = "LOCAL_HOST_ON_STOP"

Elsewhere = Callable[[IndexedFunction, str], Awaitable[None]]


class LocalHost:
    """The local function host for one function app."""

    def __init__(
        self,
        app_root: Path | str,
        settings: Path | str | Mapping[str, Any] | LocalSettings | None = None,
        *,
        port: int | None = None,
        bind: str = LOOPBACK,
        queue_lease: timedelta = DEFAULT_LEASE,
        shutdown_grace: float = 30.0,
        only: Callable[[IndexedFunction], bool] | None = None,
        elsewhere: Elsewhere | None = None,
        announce: bool = True,
    ) -> None:
        self.app_root = Path(app_root).resolve()
        self.settings = settings if isinstance(settings, LocalSettings) else LocalSettings.load(settings)
        self.config = HostConfig.load(self.app_root)
        # The port: given, else the settings' Host.LocalHttpPort, else 7071 (as Core Tools); 0: a free one.
        self._requested_port = port if port is not None else self.settings.local_http_port or DEFAULT_PORT
        self._bind = bind
        self._queue_lease = queue_lease
        self._grace = shutdown_grace
        self.functions: list[IndexedFunction] = []
        self._storage: StorageClients | None = None
        self._invoker: Invoker | None = None
        self._front: HttpFrontEnd | None = None
        self._runner: web.AppRunner | None = None
        self._timers: dict[str, TimerRunner] = {}
        self._pollers: list[QueuePoller] = []
        self._background: set[asyncio.Task[Any]] = set()
        self._port: int | None = None
        self._started = False
        self._only = only
        self._elsewhere = elsewhere
        self._announce = announce  # log "host started" and each function (a worker process does not)
        self._on_stop: Callable[[], object] | None = None

    # -- what callers read --------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the host is not started")
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self._bind}:{self.port}"

    @property
    def function_key(self) -> str:
        return self.settings.function_key

    @property
    def master_key(self) -> str:
        return self.settings.master_key

    def runs(self, fn: IndexedFunction) -> bool:
        """Whether this host runs the function (its route, poller or timer)."""
        return self._only is None or self._only(fn)

    def ready_info(self) -> dict[str, Any]:
        """The ready line's content."""
        return {
            "url": self.url,
            "function_key": self.function_key,
            "master_key": self.master_key,
            "functions": [fn.describe() for fn in self.functions],
        }

    # -- start and stop -----------------------------------------------------------------------

    async def start(self) -> None:
        if self._started:
            raise RuntimeError("the host is already started")
        self.settings.apply_to_environ()
        app_settings: Mapping[str, str] = os.environ
        self.functions = index_app(self.app_root, app_settings)
        self._on_stop = _stop_hook(app_settings.get(ON_STOP_SETTING, ""))
        for fn in self.functions:  # validate everything before anything starts
            if isinstance(fn.trigger, TimerTriggerSpec):
                parse_schedule(fn.trigger.schedule)
                RetryPolicy.from_settings(fn.retry_policy)
        self._storage = StorageClients()
        self._invoker = Invoker(
            self._storage,
            function_timeout=self.config.function_timeout,
            message_encoding=self.config.queues.message_encoding,
            threads=thread_count(app_settings),
        )
        self._started = True
        try:
            await self._start_queues()
            self._start_timers()
            await self._start_http()
        except BaseException:
            await self.stop()
            raise
        if not self._announce:
            return
        log.info(
            "host started",
            extra={
                "fields": {"url": self.url, "app_root": str(self.app_root), "functions": len(self.functions)}
            },
        )
        for fn in self.functions:
            log.info("function indexed", extra={"fields": self.function_fields(fn)})

    def function_fields(self, fn: IndexedFunction) -> dict[str, Any]:
        trigger = fn.trigger
        if isinstance(trigger, HttpTriggerSpec):
            methods = ",".join(sorted(trigger.methods)) if trigger.methods else "*"
            prefix = f"/{self.config.route_prefix}" if self.config.route_prefix else ""
            return {
                "function": fn.name,
                "trigger": "http",
                "methods": methods,
                "url": f"{self.url}{prefix}/{trigger.route.template}",
                "auth_level": trigger.auth_level,
            }
        if isinstance(trigger, TimerTriggerSpec):
            return {"function": fn.name, "trigger": "timer", "schedule": trigger.schedule}
        return {"function": fn.name, "trigger": "queue", "queue": trigger.queue_name}

    async def _start_queues(self) -> None:
        assert self._invoker is not None and self._storage is not None
        for fn in self.functions:
            if isinstance(fn.trigger, QueueTriggerSpec) and self.runs(fn):
                poller = QueuePoller(
                    fn, self._invoker, self._storage, self.config.queues, lease=self._queue_lease
                )
                try:
                    await asyncio.wait_for(poller.start(), STORAGE_START_TIMEOUT)
                except TimeoutError as exc:
                    raise ConfigError(
                        f"function {fn.name}: storage for connection {fn.trigger.connection!r} did not "
                        f"answer within {STORAGE_START_TIMEOUT:.0f} s (is Azurite running?)"
                    ) from exc
                self._pollers.append(poller)

    def _start_timers(self) -> None:
        assert self._invoker is not None
        for fn in self.functions:
            if isinstance(fn.trigger, TimerTriggerSpec) and self.runs(fn):
                runner = TimerRunner(fn, self._invoker, HostClock.from_settings(os.environ))
                self._timers[fn.name] = runner
                runner.start()

    async def _start_http(self) -> None:
        assert self._invoker is not None
        self._front = HttpFrontEnd(
            self.functions,
            routed={fn.name for fn in self.functions if self.runs(fn)},
            route_prefix=self.config.route_prefix,
            keys=self.settings,
            invoker=self._invoker,
            on_demand=self.run_on_demand,
        )
        self._runner = web.AppRunner(self._front.application(), access_log=None, handle_signals=False)
        await self._runner.setup()
        try:
            sock = listening_socket(self._bind, self._requested_port)  # as `port_is_free` checks it
        except OSError as exc:
            raise ConfigError(f"cannot listen on {self._bind}:{self._requested_port}: {exc}") from exc
        self._port = sock.getsockname()[1]
        site = web.SockSite(self._runner, sock)
        await site.start()

    async def run_on_demand(self, fn: IndexedFunction, text: str) -> None:
        """Start an invocation now (the admin API); returns once it is scheduled (or handed over)."""
        if not self.runs(fn):
            if self._elsewhere is None:
                raise RuntimeError(f"function {fn.name} does not run in this host")
            await self._elsewhere(fn, text)
            return
        task = asyncio.create_task(self._on_demand(fn, text), name=f"manual:{fn.name}")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _on_demand(self, fn: IndexedFunction, text: str) -> None:
        assert self._invoker is not None
        trigger = fn.trigger
        if isinstance(trigger, TimerTriggerSpec):
            await self._timers[fn.name].run_now()
        elif isinstance(trigger, QueueTriggerSpec):
            await self._invoker.invoke(fn, trigger_value(fn, manual_message(text)), reason="manual")
        else:
            request = func.HttpRequest(
                method="POST", url=f"{self.url}/admin/functions/{fn.name}", body=text.encode("utf-8")
            )
            await self._invoker.invoke(fn, request, reason="manual")

    async def stop(self) -> None:
        """Stop accepting work, wait (bounded) for in-flight invocations, close clients."""
        if not self._started:
            return
        self._started = False
        if self._front is not None:
            self._front.accepting = False
        for poller in self._pollers:
            await poller.stop_receiving()
        for runner in self._timers.values():
            await runner.stop()
        if self._background:
            await asyncio.wait(set(self._background), timeout=self._grace)
        for poller in self._pollers:
            await poller.wait_idle(self._grace)
        if self._invoker is not None:
            drained = await self._invoker.drain(self._grace)
            if not drained:
                log.warning("invocations still running at stop were cancelled")
        await self._run_stop_hook()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._storage is not None:
            await self._storage.close()
        if self._invoker is not None:
            self._invoker.close()
        self._pollers.clear()
        self._timers.clear()
        if self._announce:
            log.info("host stopped")

    async def _run_stop_hook(self) -> None:
        """The app's stop hook, on this host's event loop (where its async clients live), once."""
        hook, self._on_stop = self._on_stop, None
        if hook is None:
            return
        try:
            outcome = hook()
            if inspect.isawaitable(outcome):
                await asyncio.wait_for(outcome, self._grace)
        except Exception:
            log.warning("the app's %s hook failed", ON_STOP_SETTING, exc_info=True)

    async def __aenter__(self) -> LocalHost:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def _stop_hook(target: str) -> Callable[[], object] | None:
    """The callable a `module:function` setting names (imported with the app root on `sys.path`)."""
    if not target.strip():
        return None
    module_name, _, name = target.strip().partition(":")
    try:
        hook = getattr(importlib.import_module(module_name), name) if name else None
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{ON_STOP_SETTING}: cannot load {target!r}: {exc}") from exc
    if not callable(hook):
        raise ConfigError(f"{ON_STOP_SETTING} must name a function as module:function, not {target!r}")
    return hook
