"""The local host's timers follow the clock the local stack shares with the emulator."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from devhost.clock import HostClock
from devhost.indexer import IndexedFunction, TimerTriggerSpec
from devhost.settings import LocalSettings
from devhost.timers import TimerRunner
from m365emulator.clock import Clock as EmulatorClock

pytestmark = pytest.mark.unit


@dataclass
class Result:
    succeeded: bool = True


class Recorder:
    """An invoker that records the timer requests it was given."""

    def __init__(self) -> None:
        self.requests: list[Any] = []

    async def invoke(self, fn: IndexedFunction, trigger_value: Any, **kwargs: Any) -> Result:
        self.requests.append(trigger_value)
        return Result()


def yearly_timer() -> IndexedFunction:
    trigger = TimerTriggerSpec("timer", "0 0 0 1 1 *", run_on_startup=False, use_monitor=True)
    return IndexedFunction("renew", trigger, (), lambda timer: None, True, False, None, "", None)


async def test_a_timer_fires_when_the_shared_clock_jumps_past_its_occurrence(tmp_path: Path) -> None:
    emulator = EmulatorClock(tmp_path / "clock")
    clock = HostClock.from_settings({"LOCAL_CLOCK_FILE": str(tmp_path / "clock")})
    recorder = Recorder()
    runner = TimerRunner(yearly_timer(), recorder, clock)  # type: ignore[arg-type]
    runner.start()
    try:
        await asyncio.sleep(0.2)
        assert recorder.requests == []
        emulator.advance(timedelta(days=367))  # past the next 1 January, whatever today is
        for _ in range(40):
            if recorder.requests:
                break
            await asyncio.sleep(0.1)
        assert len(recorder.requests) == 1
        assert recorder.requests[0].past_due
    finally:
        await runner.stop()


def test_the_local_host_declares_the_development_environment() -> None:
    environ: dict[str, str] = {}
    LocalSettings.load({"Values": {"A": "1"}}).apply_to_environ(environ)
    assert environ == {"A": "1", "AZURE_FUNCTIONS_ENVIRONMENT": "Development"}
    declared = {"AZURE_FUNCTIONS_ENVIRONMENT": "Staging"}
    LocalSettings.load({"Values": {}}).apply_to_environ(declared)
    assert declared == {"AZURE_FUNCTIONS_ENVIRONMENT": "Staging"}  # what is set already wins


def test_make_run_points_the_connector_at_the_emulators_clock_file() -> None:
    from devhost.stack import app_settings

    ready = {"authority": "https://localhost:8443", "clock_file": "/state/clock"}
    values = app_settings({"Values": {}}, "UseDevelopmentStorage=true", ready, "http://127.0.0.1:7071")[
        "Values"
    ]
    assert values["LOCAL_CLOCK_FILE"] == "/state/clock"


async def test_a_timer_follows_the_shared_clock_back_after_a_reset(tmp_path: Path) -> None:
    emulator = EmulatorClock(tmp_path / "clock")
    emulator.advance(timedelta(days=400))
    recorder = Recorder()
    runner = TimerRunner(yearly_timer(), recorder, HostClock(tmp_path / "clock"))  # type: ignore[arg-type]
    runner.start()
    try:
        await asyncio.sleep(0.2)  # waiting for the 1 January two years on
        emulator.reset()
        await asyncio.sleep(1.5)  # the timer looks at the clock again: the next 1 January is sooner
        now = datetime.now(UTC)
        emulator.advance(datetime(now.year + 1, 1, 1, tzinfo=UTC) - now + timedelta(days=1))  # past the next
        for _ in range(40):
            if recorder.requests:
                break
            await asyncio.sleep(0.1)
        assert len(recorder.requests) == 1
    finally:
        await runner.stop()
