"""The host's clock: real time, or the local stack's shared clock when `LOCAL_CLOCK_FILE` is set.

The Microsoft 365 emulator (`--clock-file`) writes its offset from real time to that file, in seconds as
decimal text, whenever a test moves its clock; the connector reads the same file. Timers follow it, so a
jump past an occurrence fires the timer once (past due), as a host that missed occurrences does.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

CLOCK_SETTING: Final = "LOCAL_CLOCK_FILE"


class HostClock:
    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path else None
        self._seen: tuple[int, int] | None = None
        self._offset = timedelta(0)

    @classmethod
    def from_settings(cls, settings: Mapping[str, str]) -> HostClock:
        return cls(settings.get(CLOCK_SETTING, "").strip() or None)

    @property
    def shared(self) -> bool:
        return self.path is not None

    def offset(self) -> timedelta:
        if self.path is None:
            return timedelta(0)
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return timedelta(0)
        if (stat.st_mtime_ns, stat.st_size) != self._seen:
            self._offset = timedelta(seconds=float(self.path.read_text(encoding="ascii")))
            self._seen = (stat.st_mtime_ns, stat.st_size)
        return self._offset

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset()
