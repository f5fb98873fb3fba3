"""The local stack's shared clock: real time plus the offset the Microsoft 365 emulator publishes.

Only the local host builds it (`LOCAL_CLOCK_FILE`, refused anywhere else by the settings). The emulator
writes its offset from real time to the file (seconds, as decimal text, replaced whole) whenever a test
moves its clock, so the connector's subscription expiries, renewal decisions, consent states, credential
warnings and leases follow the same jump as the emulator's tokens, subscriptions and secrets. Reading
costs a `stat` per call; the file is read again only when it changed.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path


class FileClock:
    def __init__(self, path: Path | str) -> None:
        self._path = Path(path)
        self._seen: tuple[int, int] | None = None  # (mtime_ns, size) of the content read last
        self._offset = timedelta(0)

    def offset(self) -> timedelta:
        """The emulator's offset from real time; zero until the emulator has written the file."""
        try:
            stat = os.stat(self._path)
        except FileNotFoundError:
            return timedelta(0)
        version = (stat.st_mtime_ns, stat.st_size)
        if version != self._seen:
            self._offset = timedelta(seconds=float(self._path.read_text(encoding="ascii")))
            self._seen = version
        return self._offset

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset()
