"""The local host as a subprocess (`python -m devhost`), for tests and `devhost.stack`.

    process = HostProcess(app_root, settings_path, port=0, log_path=tmp / "host.log").start()
    process.url, process.function_key, process.master_key, process.functions
    process.stop()   # SIGINT (the host drains and exits 0), then SIGKILL after `timeout`

`start()` waits for the ready line on stdout; if the host exits first or does not get ready in
time it raises `HostStartError` with the end of the host's log.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
READY_TIMEOUT: Final = 60.0


class HostStartError(RuntimeError):
    """The host process exited or did not print its ready line in time."""


def stop_process(process: subprocess.Popen[bytes], timeout: float) -> int | None:
    """SIGINT, wait up to `timeout`, then SIGKILL the process group; the exit code."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
    if process.stdout is not None:
        process.stdout.close()
    return process.returncode


def read_ready_line(process: subprocess.Popen[bytes], timeout: float) -> dict[str, Any] | None:
    """The first stdout line, parsed as JSON; None if the process ends or the time runs out."""
    assert process.stdout is not None
    buffer = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while b"\n" not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            if not selector.select(min(remaining, 0.2)):
                if process.poll() is not None:
                    return None
                continue
            chunk = os.read(process.stdout.fileno(), 65536)
            if not chunk:
                return None
            buffer += chunk
    loaded = json.loads(buffer.split(b"\n", 1)[0])
    if not isinstance(loaded, dict):
        raise HostStartError(f"the ready line is not a JSON object: {loaded!r}")
    return loaded


class HostProcess:
    """`python -m devhost` in a child process."""

    def __init__(
        self,
        app_root: Path | str,
        settings_path: Path | str | None,
        *,
        port: int = 0,
        log_path: Path | str | None = None,
        inherit_stderr: bool = False,
        env: Mapping[str, str] | None = None,
        extra_args: Sequence[str] = (),
        python: str = sys.executable,
    ) -> None:
        self.app_root = Path(app_root).resolve()
        self.settings_path = None if settings_path is None else Path(settings_path).resolve()
        self.port = port
        self._own_log: tempfile.TemporaryDirectory[str] | None = None
        if log_path is None:
            self._own_log = tempfile.TemporaryDirectory(prefix="devhost-")
            log_path = Path(self._own_log.name) / "host.log"
        self.log_path = Path(log_path)
        self._inherit_stderr = inherit_stderr  # logs to this process's stderr (a terminal) instead
        self._env = env
        self._extra = list(extra_args)
        self._python = python
        self.process: subprocess.Popen[bytes] | None = None
        self.ready: dict[str, Any] = {}

    @property
    def url(self) -> str:
        return str(self.ready["url"])

    @property
    def function_key(self) -> str:
        return str(self.ready["function_key"])

    @property
    def master_key(self) -> str:
        return str(self.ready["master_key"])

    @property
    def functions(self) -> list[dict[str, Any]]:
        return list(self.ready["functions"])

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def command(self) -> list[str]:
        command = [self._python, "-m", "devhost", "--app-root", str(self.app_root), "--port", str(self.port)]
        if self.settings_path is not None:
            command += ["--settings", str(self.settings_path)]
        return command + self._extra

    def log_tail(self, lines: int = 200) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def start(self, timeout: float = READY_TIMEOUT) -> HostProcess:
        if self.process is not None:
            raise HostStartError("the host process is already started")
        env = dict(os.environ if self._env is None else self._env)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        env.setdefault("PYTHONUNBUFFERED", "1")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 (our own module)
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=None if self._inherit_stderr else log,
                env=env,
                cwd=self.app_root,
                start_new_session=True,  # Ctrl-C in a terminal reaches it only through stop()
            )
        ready = read_ready_line(self.process, timeout)
        if ready is None:
            try:  # stdout closes just before the exit code is known
                code: int | None = self.process.wait(2)
            except subprocess.TimeoutExpired:
                code = None
            self.stop(timeout=5)
            state = (
                f"exited with code {code}" if code is not None else f"was not ready within {timeout:.0f} s"
            )
            raise HostStartError(f"the local host {state}; its log ({self.log_path}):\n{self.log_tail()}")
        self.ready = ready
        return self

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGINT, wait up to `timeout`, then SIGKILL; the exit code (negative: killed by a signal)."""
        process = self.process
        if process is None:
            return None
        return stop_process(process, timeout)

    def cleanup(self) -> None:
        """Stop the process and remove the log if this object created it."""
        self.stop()
        if self._own_log is not None:
            self._own_log.cleanup()
            self._own_log = None

    def __enter__(self) -> HostProcess:
        return self if self.process is not None else self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.cleanup()
