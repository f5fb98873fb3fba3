"""Log records to telemetry: the connector's records as OpenTelemetry log records (their bound context as
attributes, so tenant, user and invocation arrive as custom dimensions), and a user's sync outcome counted
from the sync's own records (so the sync's code carries no instrumentation).

`SYNC_OUTCOMES` names the records of `shared/service/sync.py` by their format string (`record.msg`, the
constant in the code, not the formatted line); `tests/unit/telemetry` drives real sync runs and checks the
counts, so a changed message there fails a test rather than the metric going quiet.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from shared.observability import LOGGER_NAME

if TYPE_CHECKING:
    from opentelemetry.sdk._logs import LoggerProvider

SYNC_LOGGER: Final = f"{LOGGER_NAME}.sync"
# format string of a sync record -> the run's outcome
SYNC_OUTCOMES: Final = {
    "synced (%s): %d items read, %d changes, %s read, %d requests, %d series masters read": "synced",
    "mass-deletion guard held %d deletions": "held",
    "sync failed: %s": "error",
    "throttled; retrying in %d s (attempt %d)": "throttled",
}


class SyncRunCounter(logging.Handler):
    """Counts `connector.sync.runs` by mode and outcome from the sync's records."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)

    def emit(self, record: logging.LogRecord) -> None:
        if record.name != SYNC_LOGGER:
            return
        outcome = SYNC_OUTCOMES.get(str(record.msg))
        if outcome is None:
            return
        from shared import telemetry

        instruments = telemetry.current()
        if instruments is None:
            return
        if outcome == "synced" and isinstance(record.args, tuple) and record.args:
            mode = str(record.args[0])  # the pass's kind (a later pass of a run is a `sync`)
        else:
            mode = str(getattr(record, "job", ""))  # the job's kind, bound by the dispatch
        instruments.sync_runs.add(1, {"mode": mode, "outcome": outcome})


def attach(logger_provider: LoggerProvider | None) -> Callable[[], None]:
    """Put the handlers on the connector's logger; answers how to take them off again."""
    logger = logging.getLogger(LOGGER_NAME)
    handlers: list[logging.Handler] = [SyncRunCounter()]
    if logger_provider is not None:
        from opentelemetry.instrumentation.logging.handler import LoggingHandler

        handlers.append(LoggingHandler(logging.INFO, logger_provider=logger_provider))
    for handler in handlers:
        logger.addHandler(handler)

    def detach() -> None:
        for handler in handlers:
            logger.removeHandler(handler)
        if logger_provider is not None:
            logger_provider.force_flush()

    return detach
