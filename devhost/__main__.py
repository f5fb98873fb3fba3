"""`python -m devhost`: run the local function host until Ctrl-C (SIGINT) or SIGTERM.

    python -m devhost [--app-root DIR] [--port 7071] [--settings local.settings.json]
                      [--scale per-function|grouped|single] [--instances N]

When ready it prints one JSON line on stdout:
`{"url": ..., "function_key": ..., "master_key": ..., "functions": [...]}`; everything else (logs)
goes to stderr. `--port 0` picks a free port (the ready line says which); without `--port`, the
settings' `Host.LocalHttpPort` or 7071. Exit codes: 0 after a clean stop, 2 when the app or its
settings cannot be loaded, 1 when a worker process died.

The HTTP triggers run in this process and every other function in a worker process of its own, as Flex
Consumption scales them (`--scale`, see `devhost/scaling.py`), each queue function on `--instances`
processes; `--worker NAMES` is how this process starts a worker.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from datetime import timedelta
from pathlib import Path
from typing import TextIO

from devhost.host import DEFAULT_PORT
from devhost.logs import configure_logging
from devhost.queues import DEFAULT_LEASE
from devhost.scaling import (
    DEFAULT_LAYOUT,
    LAYOUTS,
    WORKER_NICENESS,
    ScaledHost,
    run_worker,
    stop_when_input_closes,
)
from devhost.settings import ConfigError

log = logging.getLogger("devhost")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devhost", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--app-root", type=Path, default=Path.cwd(), help="folder with function_app.py and host.json"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help=f"HTTP port on 127.0.0.1 (0: a free one; default: Host.LocalHttpPort, else {DEFAULT_PORT})",
    )
    parser.add_argument(
        "--settings",
        type=Path,
        default=None,
        help="a local.settings.json-shaped file (default: APP_ROOT/local.settings.json if it exists)",
    )
    parser.add_argument(
        "--queue-lease",
        type=float,
        default=DEFAULT_LEASE.total_seconds(),
        help="seconds a received queue message stays leased (renewed at half) while it runs",
    )
    parser.add_argument(
        "--shutdown-grace", type=float, default=30.0, help="seconds to wait for in-flight work"
    )
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING ...")
    parser.add_argument(
        "--scale",
        choices=LAYOUTS,
        default=DEFAULT_LAYOUT,
        help="per-function: a worker process per queue or timer function (as Flex Consumption scales them);"
        " grouped: one worker process for all of them; single: everything in this process",
    )
    parser.add_argument(
        "--instances",
        type=int,
        default=1,
        help="per-function scale: worker processes per queue-triggered function (Flex Consumption adds"
        " instances as a queue grows); timers always run on one",
    )
    parser.add_argument(
        "--restart-workers",
        action="store_true",
        help="start a worker process again when it dies (as the Functions host restarts a crashed language"
        " worker) instead of stopping the host",
    )
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # NAME[,NAME]: run only those
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace, ready_out: TextIO) -> int:
    settings = args.settings
    if settings is None and (args.app_root / "local.settings.json").is_file():
        settings = args.app_root / "local.settings.json"
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    if args.worker is not None:
        return await _serve_worker(args, settings, ready_out, stopping)
    host = ScaledHost(
        args.app_root,
        settings,
        port=args.port,
        queue_lease=timedelta(seconds=args.queue_lease),
        shutdown_grace=args.shutdown_grace,
        layout=args.scale,
        instances=args.instances,
        log_level=args.log_level,
        restart_workers=args.restart_workers,
    )
    await host.start()
    if host.settings.generated_keys:
        log.warning(
            "no keys in the settings: generated for this run",
            extra={"fields": {"function_key": host.front.function_key, "master_key": host.front.master_key}},
        )
    ready_out.write(json.dumps(host.ready_info()) + "\n")
    ready_out.flush()
    stopped = asyncio.ensure_future(stopping.wait())
    died = asyncio.ensure_future(host.died.wait())
    await asyncio.wait({stopped, died}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    died.cancel()
    log.info("stopping (%s)", "a worker process died" if host.died.is_set() else "signal received")
    await host.stop()
    return 1 if host.died.is_set() else 0


async def _serve_worker(
    args: argparse.Namespace, settings: Path | None, ready_out: TextIO, stopping: asyncio.Event
) -> int:
    names = [name for name in str(args.worker).split(",") if name]
    with contextlib.suppress(OSError, AttributeError):  # (os.nice is POSIX only)
        os.nice(WORKER_NICENESS)  # queue and timer work yields the CPU to the HTTP group (devhost.scaling)
    options = {"queue_lease": timedelta(seconds=args.queue_lease), "shutdown_grace": args.shutdown_grace}
    host = await run_worker(args.app_root, settings, names, options)
    await stop_when_input_closes(stopping)
    ready_out.write(json.dumps({"url": host.url, "master_key": host.master_key, "functions": names}) + "\n")
    ready_out.flush()
    await stopping.wait()
    await host.stop()
    log.info("worker stopped", extra={"fields": {"functions": ",".join(names)}})
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(getattr(logging, str(args.log_level).upper(), logging.INFO))
    # stdout carries the ready line only: whatever the app prints goes to stderr with the logs.
    ready_out, sys.stdout = sys.stdout, sys.stderr
    try:
        return asyncio.run(serve(args, ready_out))
    except ConfigError as exc:
        log.error("the local host cannot start: %s", exc, exc_info=exc.__cause__)
        return 2
    finally:
        sys.stdout = ready_out


if __name__ == "__main__":
    sys.exit(main())
