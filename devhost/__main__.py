"""`python -m devhost`: run the local function host until Ctrl-C (SIGINT) or SIGTERM.

    python -m devhost [--app-root DIR] [--port 7071] [--settings local.settings.json]

When ready it prints one JSON line on stdout:
`{"url": ..., "function_key": ..., "master_key": ..., "functions": [...]}`; everything else (logs)
goes to stderr. `--port 0` picks a free port (the ready line says which); without `--port`, the
settings' `Host.LocalHttpPort` or 7071. Exit codes: 0 after a clean stop, 2 when the app or its
settings cannot be loaded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from datetime import timedelta
from pathlib import Path
from typing import TextIO

from devhost.host import DEFAULT_PORT, LocalHost
from devhost.logs import configure_logging
from devhost.queues import DEFAULT_LEASE
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
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace, ready_out: TextIO) -> int:
    settings = args.settings
    if settings is None and (args.app_root / "local.settings.json").is_file():
        settings = args.app_root / "local.settings.json"
    host = LocalHost(
        args.app_root,
        settings,
        port=args.port,
        queue_lease=timedelta(seconds=args.queue_lease),
        shutdown_grace=args.shutdown_grace,
    )
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    await host.start()
    if host.settings.generated_keys:
        log.warning(
            "no keys in the settings: generated for this run",
            extra={"fields": {"function_key": host.function_key, "master_key": host.master_key}},
        )
    ready_out.write(json.dumps(host.ready_info()) + "\n")
    ready_out.flush()
    await stopping.wait()
    log.info("stopping (signal received)")
    await host.stop()
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
