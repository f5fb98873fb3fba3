"""`python -m m365emulator [--host 127.0.0.1] [--port 8443] [--seed demo|empty] [--ca-file PATH]
[--latency-ms 0] [--clock-file PATH]`: start, print one JSON ready line on stdout, serve until SIGINT /
SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from pathlib import Path

from m365emulator.core import Emulator
from m365emulator.seed import seed_bulk, seed_demo
from m365emulator.server import serve
from m365emulator.settings import Settings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m m365emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=8443, help="main port; Key Vault listens on PORT+1 (0: free ports)"
    )
    parser.add_argument("--seed", choices=("demo", "empty"), default="empty")
    parser.add_argument(
        "--ca-file", type=Path, default=None, help="where to write the CA PEM (default: a temp dir)"
    )
    parser.add_argument("--latency-ms", type=float, default=0, help="base latency added to every request")
    parser.add_argument(
        "--bulk",
        default=None,
        metavar="USERSxEVENTS[xTASKS]",
        help="also seed a bulk tenant (e.g. 1000x50, or 1000x50x20 with To Do tasks in the connector's list)"
        " for benchmarks; its id is `bulk_tenant_id` when ready",
    )
    parser.add_argument(
        "--clock-file",
        type=Path,
        default=None,
        help="write the clock's offset here on every change, for the local stack's shared clock",
    )
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> None:
    emu = Emulator(Settings(latency_ms=args.latency_ms), clock_file=args.clock_file)
    if args.seed == "demo":
        emu.seed_info = seed_demo(emu)
    if args.bulk:
        users, _, rest = str(args.bulk).lower().partition("x")
        events, _, tasks = rest.partition("x")
        bulk = seed_bulk(emu, int(users), int(events or 0), tasks_per_user=int(tasks or 0))
        emu.seed_info = {**emu.seed_info, "bulk_tenant_id": bulk["tenant_id"]}
    running = await serve(emu, host=args.host, port=args.port, ca_file=args.ca_file)
    sys.stdout.write(json.dumps(running.ready_line()) + "\n")
    sys.stdout.flush()
    logging.getLogger("m365emulator").info("ready: %s", running.ready_line()["authority"])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await running.stop()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
