"""Run the emulator as a subprocess and read its ready line: for test fixtures, benchmarks and
anything else (a dev stack) that needs one. Its stderr goes to a log file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

READY_TIMEOUT_S = 60.0
ROOT = Path(__file__).resolve().parents[1]


class EmulatorProcess:
    def __init__(
        self,
        workdir: Path,
        *,
        seed: str = "demo",
        port: int = 0,
        extra_args: list[str] | None = None,
        ready_timeout_s: float = READY_TIMEOUT_S,
    ) -> None:
        self.workdir = workdir
        self.seed = seed
        self.port = port
        self.extra_args = extra_args or []
        self.ready_timeout_s = ready_timeout_s
        self.log_file = workdir / "emulator.stderr.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> dict[str, Any]:
        """Start and return the ready line (a dict); raises with the stderr tail if it never comes."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable,
            "-m",
            "m365emulator",
            "--port",
            str(self.port),
            "--seed",
            self.seed,
            "--ca-file",
            str(self.workdir / "ca.pem"),
            *self.extra_args,
        ]
        with self.log_file.open("wb") as stderr:
            self.process = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
                command,
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=dict(os.environ, PYTHONUNBUFFERED="1"),
            )
        return self._read_ready_line()

    def _read_ready_line(self) -> dict[str, Any]:
        assert self.process is not None and self.process.stdout is not None
        os.set_blocking(self.process.stdout.fileno(), False)
        deadline = time.monotonic() + self.ready_timeout_s
        buffer = b""
        while time.monotonic() < deadline and self.process.poll() is None:
            chunk = self.process.stdout.read()
            if chunk:
                buffer += chunk
                if b"\n" in buffer:
                    return json.loads(buffer.split(b"\n", 1)[0])
            time.sleep(0.05)
        self.stop()
        tail = self.log_file.read_text(errors="replace")[-4000:] if self.log_file.exists() else ""
        raise RuntimeError(f"the emulator did not get ready (stderr in {self.log_file}):\n{tail}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
