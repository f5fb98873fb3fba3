"""The emulator's controllable clock: real time plus an offset that the control surface can advance.

With a clock file (`--clock-file`), the offset is also written there, as seconds in decimal text, on
start and on every change (written aside and renamed, so a reader never sees half a number). The local
stack points the connector's clock at the same file (`LOCAL_CLOCK_FILE`, honoured by the local host
only), so one jump moves the emulator and the connector together.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path


def write_offset(path: Path, offset: timedelta) -> None:
    """The clock file's one format: the offset from real time in seconds, as decimal text."""
    aside = path.with_name(f".{path.name}.{os.getpid()}")
    aside.write_text(f"{offset.total_seconds():.6f}\n", encoding="ascii")
    os.replace(aside, path)


class Clock:
    def __init__(self, path: Path | None = None) -> None:
        self._offset = timedelta(0)
        self.path = path
        self._publish()

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    @property
    def offset(self) -> timedelta:
        return self._offset

    def advance(self, delta: timedelta) -> datetime:
        if delta < timedelta(0):
            raise ValueError("the clock only moves forward")
        self._offset += delta
        self._publish()
        return self.now()

    def reset(self) -> None:
        self._offset = timedelta(0)
        self._publish()

    def _publish(self) -> None:
        if self.path is not None:
            write_offset(self.path, self._offset)
