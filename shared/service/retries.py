"""One way to retry, for the two kinds of retry the service makes.

- **A lost race on a row** (`update_optimistically`): read the row, change it, save it with its etag
  (If-Match); when another worker saved it in between (`StaleWrite`), read it again and apply the change
  once more, a few times at most. The change is a plain function of what was read: it answers the row to
  save, or None when there is nothing to save, and it may raise to refuse.
- **A job a transient failure sent back to its queue** (`Backoff`): the sync, the appointment writes
  and the host deliveries each queue the job again, invisible for a while, at most so many times. The
  wait and the count travel in the queued message (its `attempt` and `delay_seconds`), not in a sleeping
  worker, which is why this is a small policy of our own rather than stamina: stamina retries a call in
  process (sleeping between tries), and none of these three may hold a worker for minutes or an hour.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

from shared.service.errors import StaleWrite

R = TypeVar("R")  # what a read answers (often a row or None)
T = TypeVar("T")  # the row saved


class StillContended(Exception):
    """Every attempt lost its race: the row is being changed concurrently."""


@dataclass(frozen=True, slots=True)
class Update(Generic[R, T]):
    read: R  # what the change was last applied to
    saved: T | None  # the row as saved; None when the change answered there was nothing to save

    @property
    def latest(self) -> T | R:
        """The row as it stands now: as saved, else as read."""
        return self.saved if self.saved is not None else self.read


async def update_optimistically(
    read: Callable[[], Awaitable[R]],
    change: Callable[[R], T | None],
    save: Callable[[T], Awaitable[T]],
    *,
    attempts: int,
    races: tuple[type[Exception], ...] = (StaleWrite,),
    contended: Exception | None = None,
) -> Update[R, T]:
    """Read, change, save; again on a lost race (`races`), `attempts` times in all. After the last lost
    race raises `contended` (by default `StillContended`)."""
    for _ in range(attempts):
        current = await read()
        changed = change(current)
        if changed is None:
            return Update(current, None)
        try:
            return Update(current, await save(changed))
        except races:
            continue
    raise contended if contended is not None else StillContended()


def starting_from(first: T, read: Callable[[], Awaitable[R]]) -> Callable[[], Awaitable[T | R]]:
    """A `read` that answers `first` (a row the caller holds already) once, and reads afresh after that."""
    held = [first]

    async def reader() -> T | R:
        return held.pop() if held else await read()

    return reader


@dataclass(frozen=True, slots=True)
class Backoff:
    """How a job that met a transient failure goes back on its queue: `max_attempts` tries in all (the
    first included), each retry invisible for the server's Retry-After (if it named one) plus a wait that
    starts at `base_delay_seconds` and doubles, the whole capped at `max_delay_seconds`."""

    max_attempts: int
    base_delay_seconds: int
    max_delay_seconds: int

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay_seconds < 0 or self.max_delay_seconds < self.base_delay_seconds:
            raise ValueError("need 0 <= base_delay_seconds <= max_delay_seconds")

    def exhausted(self, failures: int) -> bool:
        """Whether `failures` failed tries are all this policy allows."""
        return failures >= self.max_attempts

    def delay_after(self, failures: int, retry_after: float = 0) -> int:
        """The wait before the next try, after `failures` failed tries (1, 2, ...)."""
        exponent = min(max(failures - 1, 0), 30)
        return min(self.max_delay_seconds, math.ceil(retry_after) + self.base_delay_seconds * (1 << exponent))


# Graph kept throttling after the SDK's own retries (sync runs and appointment writes): six more tries,
# 2, 4, 8 ... 128 s plus Retry-After, none longer than 15 minutes.
THROTTLED: Final = Backoff(max_attempts=7, base_delay_seconds=2, max_delay_seconds=900)
