"""Per-function scaling, locally: the HTTP group in one process, the other functions in worker processes.

On Flex Consumption the HTTP triggers of an app scale together, in instances of their own, and every other
trigger (each queue-triggered function, each timer) scales on its own (per-function scaling). So a queue
function busy with CPU-heavy work never delays an HTTP answer there, and a local host that ran both on one
event loop would measure, and hide, the wrong thing. `ScaledHost` is what `python -m devhost` runs:

- this process: a `LocalHost` serving the HTTP triggers and the admin API (it indexes and validates the
  whole app first, so a broken app is refused before any worker starts);
- `--scale per-function` (the default): one worker process per queue or timer function; `grouped`: one
  worker process for all of them; `single`: none, everything on this process's event loop (the old way).

Workers run at a lower CPU priority (`WORKER_NICENESS`): on Flex Consumption the HTTP group has instances
of its own, so no queue job takes CPU from a webhook's answer there; on one machine the priority stands in
for that separation (without it a sync job's burst of CPU showed up in the webhook's answer times).

A worker is `python -m devhost --worker NAME[,NAME]`: a `LocalHost` running only those functions, with an
admin API on a free loopback port, where this process hands over manual runs (`POST /admin/functions/..`).
Workers share this process's stderr (one log), its process group (a SIGKILL of the group reaches them)
and Azurite. Each watches its stdin, a pipe from this process, and stops when it closes, so a worker never
outlives the host. Stopping (SIGINT or SIGTERM) stops the workers and this host together, each draining
its in-flight invocations; a worker that dies on its own stops the whole host (exit code 1), unless the
host restarts workers (`--restart-workers`), as the Functions host starts a new language worker when one
crashes: the new process takes over the dead one's functions, and the messages the dead one held come back
on their queues when their lease ends (the chaos run kills workers mid-job this way).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

import aiohttp

from devhost.host import LocalHost
from devhost.http import KEY_HEADER, HandOverFailed
from devhost.indexer import HttpTriggerSpec, IndexedFunction, QueueTriggerSpec
from devhost.queues import DEFAULT_LEASE
from devhost.settings import ConfigError, LocalSettings

log = logging.getLogger("devhost.scaling")
LAYOUTS: Final = ("per-function", "grouped", "single")
DEFAULT_LAYOUT: Final = "per-function"
WORKER_NICENESS: Final = 5  # added to a worker process's nice value (see the module docstring)
WORKER_READY_TIMEOUT: Final = 60.0
PACKAGE_ROOT: Final = Path(__file__).resolve().parent.parent


def worker_groups(functions: Sequence[IndexedFunction], layout: str, instances: int = 1) -> list[list[str]]:
    """The functions each worker process runs (the HTTP triggers stay in the front process). With
    `per-function`, each queue-triggered function runs on `instances` processes (the instances Flex
    Consumption adds as a queue grows; they share the queue as the platform's do); a timer always on one
    (the platform runs each schedule once, whatever the instance count)."""
    others = [fn for fn in functions if not isinstance(fn.trigger, HttpTriggerSpec)]
    if layout not in LAYOUTS:
        raise ConfigError(f"--scale must be one of {', '.join(LAYOUTS)}, not {layout!r}")
    if instances < 1:
        raise ConfigError(f"--instances must be at least 1, not {instances}")
    if layout == "single" or not others:
        return []
    if layout == "grouped":
        return [[fn.name for fn in others]]
    groups: list[list[str]] = []
    for fn in others:
        copies = instances if isinstance(fn.trigger, QueueTriggerSpec) else 1
        groups += [[fn.name] for _ in range(copies)]
    return groups


class WorkerProcess:
    """One worker process: `python -m devhost --worker NAMES`, ready when it prints its ready line."""

    def __init__(self, names: Sequence[str], command: Sequence[str]) -> None:
        self.names = list(names)
        self.command = [*command, "--worker", ",".join(self.names)]
        self.process: asyncio.subprocess.Process | None = None
        self.ready: dict[str, Any] = {}

    @property
    def label(self) -> str:
        return ",".join(self.names)

    async def start(self, ready_within: float) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PACKAGE_ROOT), env.get("PYTHONPATH", "")) if p)
        env.setdefault("PYTHONUNBUFFERED", "1")
        self.process = await asyncio.create_subprocess_exec(
            *self.command,
            stdin=asyncio.subprocess.PIPE,  # closed when the front goes: the worker stops
            stdout=asyncio.subprocess.PIPE,  # the ready line
            stderr=None,  # the front's: one log
            env=env,
        )
        assert self.process.stdout is not None
        try:
            line = await asyncio.wait_for(self.process.stdout.readline(), ready_within)
        except TimeoutError:
            raise ConfigError(f"worker {self.label} was not ready within {ready_within:.0f} s") from None
        if not line:
            code = await self.process.wait()
            raise ConfigError(
                f"worker {self.label} exited with code {code} before it was ready (see the log)"
            )
        self.ready = json.loads(line)

    async def stop(self, kill_after: float) -> int | None:
        """SIGINT (it drains its invocations), then SIGKILL after `kill_after` seconds; the exit code."""
        process = self.process
        if process is None:
            return None
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(process.wait(), kill_after)
            except TimeoutError:
                log.warning("worker %s did not stop within %.0f s: killed", self.label, kill_after)
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        if process.stdin is not None:
            process.stdin.close()
        return process.returncode


class ScaledHost:
    """The local host as Flex Consumption scales it: the HTTP group here, the other functions in workers."""

    def __init__(
        self,
        app_root: Path | str,
        settings_path: Path | None,
        *,
        port: int | None = None,
        queue_lease: timedelta = DEFAULT_LEASE,
        shutdown_grace: float = 30.0,
        layout: str = DEFAULT_LAYOUT,
        instances: int = 1,
        log_level: str = "INFO",
        restart_workers: bool = False,
    ) -> None:
        self.app_root = Path(app_root).resolve()
        self._restart = restart_workers
        self.restarts = 0  # workers started again after they died
        self._settings_path = settings_path
        self._grace = shutdown_grace
        self._layout = layout
        self._instances = instances
        self._worker_command = [
            sys.executable,
            "-m",
            "devhost",
            "--app-root",
            str(self.app_root),
            "--port",
            "0",
            "--queue-lease",
            str(queue_lease.total_seconds()),
            "--shutdown-grace",
            str(shutdown_grace),
            "--log-level",
            log_level,
            *(["--settings", str(settings_path)] if settings_path is not None else []),
        ]
        self._owners: dict[str, WorkerProcess] = {}
        self.workers: list[WorkerProcess] = []
        self.front = LocalHost(
            self.app_root,
            LocalSettings.load(settings_path),
            port=port,
            queue_lease=queue_lease,
            shutdown_grace=shutdown_grace,
            only=self._runs_here,
            elsewhere=self._hand_over,
            announce=False,
        )
        self._session: aiohttp.ClientSession | None = None
        self._watch: asyncio.Task[None] | None = None
        self.died: asyncio.Event = asyncio.Event()  # a worker exited on its own

    @property
    def settings(self) -> LocalSettings:
        return self.front.settings

    def _runs_here(self, fn: IndexedFunction) -> bool:
        return self._layout == "single" or isinstance(fn.trigger, HttpTriggerSpec)

    def ready_info(self) -> dict[str, Any]:
        return self.front.ready_info()

    async def start(self) -> None:
        # The front indexes and validates the whole app and serves the HTTP group; then the workers start,
        # each with its share of the other functions.
        try:
            await self.front.start()
            for names in worker_groups(self.front.functions, self._layout, self._instances):
                worker = WorkerProcess(names, self._worker_command)
                self.workers.append(worker)
                for name in names:
                    self._owners.setdefault(name, worker)  # a manual run goes to the first instance
            await asyncio.gather(*(w.start(WORKER_READY_TIMEOUT) for w in self.workers))
        except BaseException:
            await self.stop()
            raise
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        self._watch = asyncio.create_task(self._watch_workers(), name="devhost:workers")
        self._announce()

    def _announce(self) -> None:
        front = self.front
        log.info(
            "host started",
            extra={
                "fields": {
                    "url": front.url,
                    "app_root": str(self.app_root),
                    "functions": len(front.functions),
                    "scale": self._layout,
                    "instances": self._instances,
                    "processes": 1 + len(self.workers),
                }
            },
        )
        for fn in front.functions:
            worker = self._owners.get(fn.name)
            process = {"pid": worker.process.pid} if worker and worker.process else {"pid": os.getpid()}
            log.info("function indexed", extra={"fields": front.function_fields(fn) | process})

    async def _watch_workers(self) -> None:
        while True:
            waits = {
                asyncio.ensure_future(w.process.wait()): w for w in self.workers if w.process is not None
            }
            if not waits:
                return
            done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for waiting in pending:
                waiting.cancel()
            for finished in done:
                worker = waits[finished]
                if not self._restart:
                    log.error(
                        "worker %s exited (code %s); stopping the host", worker.label, finished.result()
                    )
                    self.died.set()
                    return
                log.warning("worker %s exited (code %s); starting it again", worker.label, finished.result())
                while True:
                    try:
                        await self._replace(worker)
                        break
                    except Exception:  # a worker that cannot start now is tried again, never left dead
                        log.exception("worker %s did not start again; trying once more", worker.label)
                        await asyncio.sleep(1)

    async def _replace(self, dead: WorkerProcess) -> None:
        """A new process for a dead worker's functions (its stdin closed first, so nothing lingers)."""
        await dead.stop(0)
        worker = WorkerProcess(dead.names, self._worker_command)
        await worker.start(WORKER_READY_TIMEOUT)
        self.workers[self.workers.index(dead)] = worker
        for name, owner in list(self._owners.items()):
            if owner is dead:
                self._owners[name] = worker
        self.restarts += 1
        log.info(
            "worker started again",
            extra={
                "fields": {"functions": worker.label, "pid": worker.process.pid if worker.process else None}
            },
        )

    async def _hand_over(self, fn: IndexedFunction, text: str) -> None:
        worker = self._owners[fn.name]
        if self._session is None or not worker.ready:
            raise HandOverFailed(f"worker {worker.label} is not running")
        url = f"{worker.ready['url']}/admin/functions/{fn.name}"
        headers = {KEY_HEADER: str(worker.ready["master_key"])}
        try:
            async with self._session.post(url, json={"input": text}, headers=headers) as response:
                if response.status != 202:
                    raise HandOverFailed(f"worker {worker.label} answered {response.status}")
        except aiohttp.ClientError as error:
            raise HandOverFailed(f"worker {worker.label}: {error}") from error

    async def stop(self) -> None:
        """Stop the workers and the front together, each draining its in-flight invocations."""
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        await asyncio.gather(self.front.stop(), *(w.stop(self._grace + 10) for w in self.workers))
        if self._session is not None:
            await self._session.close()
            self._session = None
        log.info("host stopped")


async def run_worker(
    app_root: Path, settings: Path | None, names: Sequence[str], options: Mapping[str, Any]
) -> LocalHost:
    """The worker side: a `LocalHost` running only `names` (checked against the app's functions)."""
    wanted = set(names)
    host = LocalHost(
        app_root,
        settings,
        port=0,
        queue_lease=options["queue_lease"],
        shutdown_grace=options["shutdown_grace"],
        only=lambda fn: fn.name in wanted,
        announce=False,
    )
    await host.start()
    unknown = wanted - {fn.name for fn in host.functions}
    if unknown:
        await host.stop()
        raise ConfigError(f"no such function: {', '.join(sorted(unknown))}")
    log.info("worker started", extra={"fields": {"functions": ",".join(names), "pid": os.getpid()}})
    return host


class _EndOfInput(asyncio.Protocol):
    def __init__(self, stop: asyncio.Event) -> None:
        self._stop = stop

    def eof_received(self) -> bool | None:
        self._stop.set()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop.set()


async def stop_when_input_closes(stop: asyncio.Event) -> None:
    """Set `stop` when stdin (the front's pipe) closes: a worker never outlives its host."""
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: _EndOfInput(stop), sys.stdin)
