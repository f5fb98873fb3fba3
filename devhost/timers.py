"""Timer triggers: NCRONTAB schedules in UTC, run at each occurrence, never overlapping themselves.

- NCRONTAB has six fields, `{second} {minute} {hour} {day} {month} {day-of-week}`; five-field
  expressions (no seconds) are accepted too. As in NCrontab (the host's parser), when both the day
  and the day-of-week are restricted an occurrence must match both. A TimeSpan (`hh:mm:ss`) is an
  interval, as on App Service plans.
- After a run, the next occurrence is computed from the later of now and the run's occurrence, so a
  run that overran skips what it missed (no catch-up burst), like the host.
- `past_due` is True when an invocation starts more than `PAST_DUE_TOLERANCE` after its occurrence.
  There is no schedule monitor: the host's `useMonitor` state, kept in storage across restarts, is
  not emulated.
- `runOnStartup` runs the function once when the host starts.
- A retry policy (`@app.retry`, fixed_delay or exponential_backoff) is applied as the host does for
  timer triggers.
- `run_now()` (the admin API) waits for a scheduled run in progress, then runs with `past_due` False.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol

from azure.functions.timer import TimerRequest
from croniter import croniter

from devhost.clock import HostClock
from devhost.indexer import IndexedFunction, TimerTriggerSpec
from devhost.invoker import Invoker
from devhost.settings import ConfigError, parse_timespan

log = logging.getLogger("devhost.timers")
PAST_DUE_TOLERANCE: Final = timedelta(seconds=1)
MAX_RETRIES: Final = 10
CLOCK_CHECK_S: Final = 1.0  # how often a wait looks at a shared clock that a test may move


class ScheduleError(ConfigError):
    """The schedule expression is not a valid NCRONTAB (or TimeSpan)."""


class Schedule(Protocol):
    @property
    def expression(self) -> str: ...

    def next_after(self, moment: datetime) -> datetime: ...

    def previous_before(self, moment: datetime) -> datetime: ...


@dataclass(frozen=True)
class CronSchedule:
    expression: str

    def _iter(self, moment: datetime) -> croniter:
        seconds = len(self.expression.split()) == 6
        return croniter(self.expression, moment, second_at_beginning=seconds, day_or=False)

    def next_after(self, moment: datetime) -> datetime:
        result: datetime = self._iter(moment.astimezone(UTC)).get_next(datetime)
        return result.astimezone(UTC)

    def previous_before(self, moment: datetime) -> datetime:
        result: datetime = self._iter(moment.astimezone(UTC)).get_prev(datetime)
        return result.astimezone(UTC)


@dataclass(frozen=True)
class IntervalSchedule:
    expression: str
    interval: timedelta

    def next_after(self, moment: datetime) -> datetime:
        return moment + self.interval

    def previous_before(self, moment: datetime) -> datetime:
        return moment - self.interval


def parse_schedule(expression: str) -> Schedule:
    """Parse an NCRONTAB expression (six or five fields) or a TimeSpan interval."""
    text = " ".join(expression.split())
    fields = text.split(" ")
    if len(fields) == 1 and ":" in text:
        interval = parse_timespan(text)
        if interval <= timedelta(0):
            raise ScheduleError(f"schedule {expression!r}: the interval must be positive")
        return IntervalSchedule(text, interval)
    if len(fields) not in (5, 6):
        raise ScheduleError(
            f"schedule {expression!r} is not NCRONTAB: expected 6 fields "
            "({second} {minute} {hour} {day} {month} {day-of-week}) or 5"
        )
    if not croniter.is_valid(text, second_at_beginning=len(fields) == 6):
        raise ScheduleError(f"schedule {expression!r} is not a valid NCRONTAB expression")
    return CronSchedule(text)


def _timespan_seconds(value: Any, default: float) -> float:
    if value in (None, ""):
        return default
    return parse_timespan(str(value)).total_seconds()


@dataclass(frozen=True)
class RetryPolicy:
    strategy: str
    max_retry_count: int
    delay: float
    minimum: float
    maximum: float

    @classmethod
    def from_settings(cls, raw: Mapping[str, Any] | None) -> RetryPolicy | None:
        if not raw:
            return None
        strategy = str(raw.get("strategy", "")).lower()
        if strategy not in {"fixed_delay", "exponential_backoff"}:
            raise ConfigError(f"retry strategy {strategy!r} is not fixed_delay or exponential_backoff")
        count = int(raw.get("max_retry_count", 0))
        if count < -1:
            raise ConfigError("retry max_retry_count must be -1 or more")
        return cls(
            strategy,
            MAX_RETRIES if count == -1 else count,
            _timespan_seconds(raw.get("delay_interval"), 0.0),
            _timespan_seconds(raw.get("minimum_interval"), 0.0),
            _timespan_seconds(raw.get("maximum_interval"), 0.0),
        )

    def delay_before(self, retry: int) -> float:
        """Seconds to wait before retry number `retry` (1-based)."""
        if self.strategy == "fixed_delay":
            return self.delay
        backoff: float = self.minimum * 2.0 ** (retry - 1)
        return min(self.maximum or float("inf"), backoff)


class TimerRunner:
    """Runs one timer function on its schedule, and on demand, by the host's clock (real time, or the
    clock the local stack shares with the emulator: then a wait is re-checked at least every
    `CLOCK_CHECK_S`, so a jump of that clock past an occurrence fires it)."""

    def __init__(self, fn: IndexedFunction, invoker: Invoker, clock: HostClock | None = None) -> None:
        assert isinstance(fn.trigger, TimerTriggerSpec)
        self._clock = clock or HostClock()
        self.fn = fn
        self.trigger: TimerTriggerSpec = fn.trigger
        self.schedule = parse_schedule(fn.trigger.schedule)
        self.retry = RetryPolicy.from_settings(fn.retry_policy)
        self._invoker = invoker
        self._lock = asyncio.Lock()
        self._last: datetime | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=f"timer:{self.fn.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def _request(self, occurrence: datetime, past_due: bool) -> TimerRequest:
        now = self._clock.now()
        last = self._last or self.schedule.previous_before(occurrence)
        return TimerRequest(
            past_due=past_due,
            schedule_status={
                "Last": last.isoformat(),
                "Next": self.schedule.next_after(max(now, occurrence)).isoformat(),
                "LastUpdated": now.isoformat(),
            },
            schedule={"AdjustForDST": True},
        )

    async def _fire(self, occurrence: datetime, *, past_due: bool, reason: str) -> None:
        async with self._lock:
            attempts = 1 + (self.retry.max_retry_count if self.retry else 0)
            for attempt in range(attempts):
                if attempt and self.retry:
                    await asyncio.sleep(self.retry.delay_before(attempt))
                result = await self._invoker.invoke(
                    self.fn,
                    self._request(occurrence, past_due),
                    reason=reason,
                    retry_count=attempt,
                    max_retry_count=self.retry.max_retry_count if self.retry else 0,
                    log_fields={"schedule": self.schedule.expression, "past_due": past_due}
                    | ({"retry": attempt} if attempt else {}),
                )
                if result.succeeded:
                    break
            self._last = occurrence

    async def run_now(self) -> None:
        await self._fire(self._clock.now(), past_due=False, reason="manual")

    async def _loop(self) -> None:
        if self.trigger.run_on_startup:
            await self._fire(self._clock.now(), past_due=False, reason="startup")
        occurrence = self.schedule.next_after(self._clock.now())
        log.info(
            "timer scheduled",
            extra={
                "fields": {
                    "function": self.fn.name,
                    "schedule": self.schedule.expression,
                    "next": occurrence.isoformat(),
                }
            },
        )
        while True:
            now = self._clock.now()
            if (
                self._clock.shared
            ):  # a shared clock put back (the emulator's reset): the next occurrence is sooner
                occurrence = min(occurrence, self.schedule.next_after(now))
            delay = (occurrence - now).total_seconds()
            if delay > 0:
                await asyncio.sleep(min(delay, CLOCK_CHECK_S) if self._clock.shared else delay)
                continue
            started = self._clock.now()
            await self._fire(
                occurrence, past_due=started - occurrence > PAST_DUE_TOLERANCE, reason="schedule"
            )
            occurrence = self.schedule.next_after(max(self._clock.now(), occurrence))
