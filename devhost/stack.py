"""`python -m devhost.stack` (what `make run` calls): the whole product on one machine.

1. Azurite, in memory, on 10000-10002 when they are free (else on free ports).
2. The Microsoft 365 emulator (`python -m m365emulator --seed demo`), when the package is there,
   on 8443 (+1 for Key Vault) when free, else on free ports; its CA goes to `.devstack/emulator-ca.pem`.
3. `.devstack/local.settings.json`, from `local.settings.sample.json` with the real values: Azurite's
   connection string, the emulator's endpoints and identities, generated function and master keys.
4. The local function host (`python -m devhost`) on 7071 (else a free port) with those settings. The
   port checks bind as the servers do (`devhost.ports`): a port still in TIME_WAIT from the last run is
   free. The emulator's connector app then gets the callback this host serves as its redirect URI
   (`register_callback`), so the consent link works on whatever port the host took.
5. `seed_demo(stack)`: the extension point where the demo organisation is put into the connector
   (see its docstring), then a summary, and everything runs until Ctrl-C, then stops in reverse order.

Logs: the function host's on this terminal; Azurite's and the emulator's in `.devstack/*.log`
(`--state-dir` puts that folder elsewhere).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import logging
import os
import signal
import ssl
import subprocess
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Final

import httpx

from devhost.azurite import DEFAULT_PORTS, Azurite, AzuriteError, AzuritePorts
from devhost.launcher import HostProcess, HostStartError, read_ready_line, stop_process
from devhost.logs import configure_logging
from devhost.ports import free_port, port_is_free
from devhost.settings import generate_key

log = logging.getLogger("devhost.stack")
REPO_ROOT: Final = Path(__file__).resolve().parent.parent
STATE_DIR: Final = ".devstack"
HOST_PORT: Final = 7071
EMULATOR_PORT: Final = 8443
EMULATOR_READY_TIMEOUT: Final = 60.0

# Emulator ready-line key -> app settings it fills.
EMULATOR_SETTINGS: Final[Mapping[str, tuple[str, ...]]] = {
    "keyvault": ("KEY_VAULT_URL",),
    "client_id": ("GRAPH_CLIENT_ID",),
    "authority": ("GRAPH_AUTHORITY_HOST", "AZURE_AUTHORITY_HOST"),
    "graph": ("GRAPH_BASE_URL",),
    "ca_file": ("TLS_CA_BUNDLE",),
    "platform_tenant_id": ("AZURE_TENANT_ID",),
    "platform_client_id": ("AZURE_CLIENT_ID",),
    "platform_client_secret": ("AZURE_CLIENT_SECRET",),
    "clock_file": ("LOCAL_CLOCK_FILE",),  # one clock for the emulator, the connector and the host's timers
}


@dataclass
class Stack:
    """What is running; handed to `seed_demo` and printed in the summary."""

    function_host: str
    function_key: str
    master_key: str
    azurite_connection_string: str
    settings_path: Path
    emulator: Mapping[str, Any] | None = None  # the emulator's ready line, when it runs
    notes: list[str] = field(default_factory=list)  # extra summary lines (seed_demo may add some)


def seed_demo(stack: Stack) -> None:
    """Extension point: seed the demo organisation into the connector once everything runs.

    If a module `devhost.demo` exists, its `seed(stack: Stack) -> None` is called here (it can call the
    function host's API with `stack.function_key`, and the emulator's control API, and append lines to
    `stack.notes` for the summary, e.g. the console URL). Without it, nothing is seeded.
    """
    try:
        demo = importlib.import_module("devhost.demo")
    except ModuleNotFoundError as exc:
        if exc.name != "devhost.demo":
            raise
        stack.notes.append("demo organisation: not seeded into the connector (no devhost/demo.py yet)")
        return
    demo.seed(stack)


def consent_callback(public_base_url: str) -> str:
    """The connector's consent redirect URI (what `ConnectorContext.consent_redirect_uri` builds)."""
    return f"{public_base_url.rstrip('/')}/api/consent/callback"


def register_callback(emulator: Mapping[str, Any], public_base_url: str) -> str:
    """Make the callback this host serves the emulator connector app's one redirect URI, as an operator
    updates the app registration when the app's address changes (docs/deployment.md); answers it."""
    callback = consent_callback(public_base_url)
    trust = ssl.create_default_context(cafile=str(emulator["ca_file"]))
    with httpx.Client(verify=trust, timeout=30) as control:
        answer = control.patch(
            f"{emulator['control']}/apps/{emulator['client_id']}", json={"redirect_uris": [callback]}
        )
    if answer.status_code != 200:
        raise RuntimeError(f"the emulator refused the redirect URI {callback}: {answer.text}")
    return callback


def emulator_available() -> bool:
    try:
        return importlib.util.find_spec("m365emulator.__main__") is not None
    except ModuleNotFoundError:
        return False


def app_settings(
    sample: Mapping[str, Any], azurite: str, emulator: Mapping[str, Any] | None, host_url: str
) -> dict[str, Any]:
    """`local.settings.json` for this run: the sample with real values and fresh keys."""
    values = {k: v for k, v in dict(sample.get("Values") or {}).items() if isinstance(v, str)}
    values["AzureWebJobsStorage"] = azurite
    values["PUBLIC_BASE_URL"] = host_url
    for key, names in EMULATOR_SETTINGS.items():
        if emulator is not None and key in emulator:
            for name in names:
                values[name] = str(emulator[key])
    return {
        "IsEncrypted": False,
        "Values": values,
        "Host": {"LocalHttpPort": int(host_url.rsplit(":", 1)[1])},
        "FunctionKeys": {"default": generate_key()},
        "MasterKey": generate_key(),
    }


class EmulatorProcess:
    """`python -m m365emulator` in its own process group."""

    def __init__(self, port: int, ca_file: Path, log_path: Path) -> None:
        self.port = port
        self.ca_file = ca_file
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.ready: dict[str, Any] = {}

    def start(self) -> dict[str, Any]:
        command = [sys.executable, "-m", "m365emulator", "--port", str(self.port), "--seed", "demo"]
        command += ["--ca-file", str(self.ca_file), "--clock-file", str(self.ca_file.parent / "clock")]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        with open(self.log_path, "ab") as log_file:
            self.process = subprocess.Popen(  # noqa: S603 (our own module)
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log_file,
                env=env,
                cwd=REPO_ROOT,
                start_new_session=True,
            )
        ready = read_ready_line(self.process, EMULATOR_READY_TIMEOUT)
        if ready is None:
            self.stop()
            tail = "\n".join(self.log_path.read_text(errors="replace").splitlines()[-40:])
            raise RuntimeError(
                f"the Microsoft 365 emulator did not start; its log ({self.log_path}):\n{tail}"
            )
        self.ready = ready
        return ready

    def stop(self, timeout: float = 15.0) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        stop_process(process, timeout)


def _azurite_ports() -> AzuritePorts | None:
    return AzuritePorts(*DEFAULT_PORTS) if all(port_is_free(p) for p in DEFAULT_PORTS) else None


def _summary(stack: Stack, azurite: Azurite) -> str:
    host = stack.function_host
    lines = [
        "",
        "Local stack running (Ctrl-C stops everything):",
        f"  function host     {host}   (function key: {stack.function_key})",
        f"  host status       {host}/admin/host/status",
        f"  health, OpenAPI   {host}/api/health   {host}/api/openapi.json",
        f"  run a function    curl -X POST -H 'x-functions-key: {stack.master_key}' "
        f"-H 'content-type: application/json' -d '{{\"input\": \"\"}}' {host}/admin/functions/NAME",
        f"  Azurite           {azurite.blob_endpoint} {azurite.queue_endpoint} {azurite.table_endpoint}",
    ]
    if stack.emulator is not None:
        lines.append(
            f"  M365 emulator     {stack.emulator.get('authority')}  control: {stack.emulator.get('control')}"
        )
        lines.append(f"  emulator CA       {stack.emulator.get('ca_file')}")
    else:
        lines.append("  M365 emulator     not started")
    lines.append(f"  settings          {stack.settings_path}")
    lines += [f"  {note}" for note in stack.notes]
    return "\n".join(lines) + "\n"


def _emulator(args: argparse.Namespace, state: Path) -> EmulatorProcess | None:
    if args.no_emulator:
        log.info("the Microsoft 365 emulator is not started (--no-emulator)")
        return None
    if not emulator_available():
        log.warning("the Microsoft 365 emulator is not available yet (no m365emulator/__main__.py)")
        return None
    wanted = args.emulator_port
    port = wanted if port_is_free(wanted) and port_is_free(wanted + 1) else 0  # Key Vault is on PORT+1
    return EmulatorProcess(port, state / "emulator-ca.pem", state / "emulator.log")


def _watch(stop: threading.Event, host: HostProcess, emulator: EmulatorProcess | None) -> int:
    """Wait for Ctrl-C (0), or for a child to die (1)."""
    while not stop.wait(0.5):
        if host.process is not None and host.process.poll() is not None:
            log.error("the function host exited (code %s); stopping", host.process.returncode)
            return 1
        if emulator is not None and emulator.process is not None and emulator.process.poll() is not None:
            log.error("the Microsoft 365 emulator exited; stopping (see %s)", emulator.log_path)
            return 1
    log.info("stopping")
    return 0


def _write_settings(
    app_root: Path, state: Path, azurite: Azurite, ready: Mapping[str, Any] | None, url: str
) -> Path:
    sample = json.loads((app_root / "local.settings.sample.json").read_text(encoding="utf-8"))
    path = state / "local.settings.json"
    content = app_settings(sample, azurite.connection_string, ready, url)
    exporter = os.environ.get("TELEMETRY_EXPORTER", "").strip()
    if exporter:  # `TELEMETRY_EXPORTER=console make run`: the app's traces, metrics and logs (README)
        content["Values"]["TELEMETRY_EXPORTER"] = exporter
    path.write_text(json.dumps(content, indent=2), encoding="utf-8")
    return path


def run(args: argparse.Namespace) -> int:
    app_root: Path = args.app_root.resolve()
    state: Path = (args.state_dir or app_root / STATE_DIR).resolve()
    state.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    azurite = Azurite(ports=_azurite_ports(), log_file=state / "azurite.log")
    emulator: EmulatorProcess | None = None
    host: HostProcess | None = None
    try:
        azurite.start()
        log.info("Azurite started", extra={"fields": {"queue": azurite.queue_endpoint}})
        emulator = _emulator(args, state)
        ready = emulator.start() if emulator is not None else None
        if ready is not None:
            log.info(
                "Microsoft 365 emulator started", extra={"fields": {"authority": ready.get("authority")}}
            )
        host_port = args.port if port_is_free(args.port) else free_port()
        if host_port != args.port:
            log.warning("port %d is busy: the function host uses %d", args.port, host_port)
        public_base_url = f"http://127.0.0.1:{host_port}"
        settings_path = _write_settings(app_root, state, azurite, ready, public_base_url)
        host = HostProcess(app_root, settings_path, port=host_port, inherit_stderr=True).start()
        if ready is not None and "client_id" in ready:
            log.info(
                "consent redirect URI registered",
                extra={"fields": {"uri": register_callback(ready, public_base_url)}},
            )
        stack = Stack(
            function_host=host.url,
            function_key=host.function_key,
            master_key=host.master_key,
            azurite_connection_string=azurite.connection_string,
            settings_path=settings_path,
            emulator=ready,
        )
        seed_demo(stack)
        sys.stdout.write(_summary(stack, azurite))
        sys.stdout.flush()
        return _watch(stop, host, emulator)
    except (AzuriteError, HostStartError, RuntimeError, OSError, httpx.HTTPError) as exc:
        log.error("the local stack cannot start: %s", exc)
        return 1
    finally:
        if host is not None:
            host.stop()
        if emulator is not None:
            emulator.stop()
        azurite.stop()
        log.info("stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devhost.stack", description=__doc__.splitlines()[0])
    parser.add_argument("--app-root", type=Path, default=REPO_ROOT)
    parser.add_argument("--port", type=int, default=HOST_PORT, help="function host port (busy: a free one)")
    parser.add_argument("--emulator-port", type=int, default=EMULATOR_PORT)
    parser.add_argument("--no-emulator", action="store_true", help="do not start the Microsoft 365 emulator")
    parser.add_argument(
        "--state-dir", type=Path, default=None, help=f"settings, CA and logs (default: APP_ROOT/{STATE_DIR})"
    )
    args = parser.parse_args(argv)
    configure_logging()
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
