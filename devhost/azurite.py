"""Azurite (Microsoft's storage emulator, pinned in package.json) as a child process.

    with Azurite() as azurite:              # free loopback ports, in memory
        print(azurite.connection_string)

The blob, queue and table services each run in a Node process of their own (`node_modules/.bin/azurite-blob`,
`azurite-queue`, `azurite-table`), as they are separate services in Azure: a queue message written while the
table service is busy with a large transaction waits for nothing (one `azurite` process would serve all
three on one event loop). Options: `--disableTelemetry --skipApiVersionCheck --silent --loose`, in memory
(`--inMemoryPersistence`) or in a given folder (`location=`). Each process runs in its own process group,
which `stop()` ends.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final

from devhost.ports import free_port

ACCOUNT_NAME: Final = "devstoreaccount1"
# Azurite's well-known development account key (public, documented by Microsoft).
ACCOUNT_KEY: Final = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
DEFAULT_PORTS: Final = (10000, 10001, 10002)
REPO_ROOT: Final = Path(__file__).resolve().parent.parent
START_TIMEOUT: Final = 30.0


class AzuriteError(RuntimeError):
    """Azurite is missing or did not start."""


def _accepts(port: int, host: str = "127.0.0.1") -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


SERVICES: Final = ("blob", "queue", "table")


def azurite_binary(repo_root: Path = REPO_ROOT, service: str | None = None) -> Path:
    binary = repo_root / "node_modules" / ".bin" / ("azurite" if service is None else f"azurite-{service}")
    if not binary.exists():
        raise AzuriteError(
            f"Azurite is not installed ({binary} is missing): run `make install` (or `npm ci`) in {repo_root}"
        )
    return binary


@dataclass(frozen=True)
class AzuritePorts:
    blob: int
    queue: int
    table: int


class Azurite:
    """Azurite's blob, queue and table services on loopback ports, a process each."""

    def __init__(
        self,
        *,
        ports: AzuritePorts | tuple[int, int, int] | None = None,
        location: Path | str | None = None,
        in_memory: bool | None = None,
        host: str = "127.0.0.1",
        repo_root: Path = REPO_ROOT,
        log_file: Path | None = None,
    ) -> None:
        self.binaries = {service: azurite_binary(repo_root, service) for service in SERVICES}
        self.host = host
        self._fixed_ports = AzuritePorts(*ports) if isinstance(ports, tuple) else ports
        self.ports: AzuritePorts | None = None
        self._location = Path(location) if location is not None else None
        self.in_memory = self._location is None if in_memory is None else in_memory
        self._log_file = log_file
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        self._processes: dict[str, subprocess.Popen[bytes]] = {}

    # -- endpoints ----------------------------------------------------------------------------

    def _endpoint(self, port: int) -> str:
        return f"http://{self.host}:{port}/{ACCOUNT_NAME}"

    @property
    def _ports(self) -> AzuritePorts:
        if self.ports is None:
            raise AzuriteError("Azurite is not started")
        return self.ports

    @property
    def blob_endpoint(self) -> str:
        return self._endpoint(self._ports.blob)

    @property
    def queue_endpoint(self) -> str:
        return self._endpoint(self._ports.queue)

    @property
    def table_endpoint(self) -> str:
        return self._endpoint(self._ports.table)

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={self.blob_endpoint};QueueEndpoint={self.queue_endpoint};"
            f"TableEndpoint={self.table_endpoint};"
        )

    @property
    def running(self) -> bool:
        return bool(self._processes) and all(p.poll() is None for p in self._processes.values())

    @property
    def pids(self) -> dict[str, int]:
        """Each service's process id."""
        return {service: process.pid for service, process in self._processes.items()}

    # -- life cycle ---------------------------------------------------------------------------

    def _command(self, service: str, port: int, location: Path) -> list[str]:
        command = [
            str(self.binaries[service]),
            f"--{service}Host", self.host, f"--{service}Port", str(port),
            "--disableTelemetry", "--skipApiVersionCheck", "--silent", "--loose",
        ]  # fmt: skip
        # In memory, Azurite refuses --location; it runs in `location` (its cwd) for its log only.
        command += ["--inMemoryPersistence"] if self.in_memory else ["--location", str(location)]
        return command

    def start(self, timeout: float = START_TIMEOUT) -> Azurite:
        if self._processes:
            raise AzuriteError("Azurite is already started")
        location = self._location
        if location is None:
            self._workdir = tempfile.TemporaryDirectory(prefix="azurite-")
            location = Path(self._workdir.name)
        location.mkdir(parents=True, exist_ok=True)
        attempts = 1 if self._fixed_ports else 3
        last_error = ""
        for _ in range(attempts):
            ports = self._fixed_ports or AzuritePorts(free_port(), free_port(), free_port())
            error = self._launch(ports, location, timeout)
            if error is None:
                self.ports = ports
                return self
            last_error = error
        self._cleanup_workdir()
        raise AzuriteError(f"Azurite did not start: {last_error}")

    def _launch(self, ports: AzuritePorts, location: Path, timeout: float) -> str | None:
        log_path = self._log_file or location / "azurite.log"
        wanted = {"blob": ports.blob, "queue": ports.queue, "table": ports.table}
        started: dict[str, subprocess.Popen[bytes]] = {}
        with open(log_path, "ab") as log:
            for service, port in wanted.items():
                started[service] = subprocess.Popen(  # noqa: S603 (our own pinned binary)
                    self._command(service, port, location),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    cwd=location,
                )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ended = [(service, p.returncode) for service, p in started.items() if p.poll() is not None]
            if ended:
                for process in started.values():
                    self._kill(process)
                output = log_path.read_text(errors="replace").strip()[-2000:]
                return f"azurite-{ended[0][0]} exit code {ended[0][1]}: {output}"
            if all(_accepts(port, self.host) for port in wanted.values()):
                self._processes = started
                return None
            time.sleep(0.1)
        for process in started.values():
            self._kill(process)
        return f"the ports {ports} did not accept connections within {timeout:.0f} s"

    @staticmethod
    def _kill(process: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
        if process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout)

    def restart(self, down_for: float = 0.0, timeout: float = START_TIMEOUT) -> None:
        """Stop every service and start them again on the same ports and folder after `down_for` seconds, as
        storage comes back after an outage. SIGINT: on it (not on SIGTERM) Azurite closes its databases,
        writing out what its autosave (every 5 s) has not yet, so nothing acknowledged is lost, as in Azure.
        Needs a `location`: in memory, a restart would lose everything."""
        if self.in_memory or self._location is None:
            raise AzuriteError("a restart keeps the data only with a location (not in memory)")
        if not self._processes:
            raise AzuriteError("Azurite is not started")
        ports = self._ports
        processes, self._processes = self._processes, {}
        for process in processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGINT)
        for process in processes.values():
            try:
                process.wait(15.0)
            except subprocess.TimeoutExpired:
                self._kill(process)
        time.sleep(down_for)
        error = self._launch(ports, self._location, timeout)
        if error is not None:
            raise AzuriteError(f"Azurite did not start again: {error}")

    def _cleanup_workdir(self) -> None:
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None

    def stop(self) -> None:
        processes, self._processes = self._processes, {}
        for process in processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes.values():
            self._kill(process)
        self._cleanup_workdir()

    def __enter__(self) -> Azurite:
        return self if self._processes else self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """`python -m devhost.azurite [--port-base 10000]`: Azurite alone, in memory, until Ctrl-C."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m devhost.azurite", description=main.__doc__)
    parser.add_argument(
        "--port-base", type=int, default=DEFAULT_PORTS[0], help="blob port; queue +1, table +2"
    )
    args = parser.parse_args(argv)
    ports = AzuritePorts(args.port_base, args.port_base + 1, args.port_base + 2)
    stopped = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopped
        stopped = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    with Azurite(ports=ports) as azurite:
        sys.stdout.write(f"Azurite running (Ctrl-C stops it)\n  {azurite.connection_string}\n")
        sys.stdout.flush()
        while not stopped and azurite.running:
            time.sleep(0.3)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
