"""Log records to telemetry: the connector's records as OpenTelemetry log records, their bound context as
attributes, so tenant, user and invocation arrive as custom dimensions.

`ContextHandler` builds each record's attributes from its dimensions alone (`custom_dimensions`: the bound
context and the record's own, `shared/observability.py`), flat. OpenTelemetry's `LoggingHandler` copied
every non-standard member of the record instead, so each dimension went twice (flat, and again in a
nested `custom_dimensions` map that Application Insights shows as one string), looked its logger up on
every record and held a recursion guard in a context variable: about half of a record's cost, paid on the
request path (`python -m benchmarks.telemetry_cost`, part 3). The distro puts OpenTelemetry's handler on
the connector's logger; `attach` puts this one in its place.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry._logs import SeverityNumber
from opentelemetry.context import get_current
from opentelemetry.instrumentation.logging.handler import LoggingHandler

from shared.observability import LOGGER_NAME

if TYPE_CHECKING:
    from opentelemetry._logs import Logger, LoggerProvider

# Python's levels as OpenTelemetry's severities (its log data model's mapping).
_SEVERITY: dict[int, tuple[SeverityNumber, str]] = {
    logging.DEBUG: (SeverityNumber.DEBUG, "DEBUG"),
    logging.INFO: (SeverityNumber.INFO, "INFO"),
    logging.WARNING: (SeverityNumber.WARN, "WARN"),
    logging.ERROR: (SeverityNumber.ERROR, "ERROR"),
    logging.CRITICAL: (SeverityNumber.FATAL, "FATAL"),
}


def severity(levelno: int) -> tuple[SeverityNumber, str]:
    """The severity of a Python level; between two standard levels, the lower's."""
    for level in sorted(_SEVERITY, reverse=True):
        if levelno >= level:
            return _SEVERITY[level]
    return SeverityNumber.UNSPECIFIED, "UNSPECIFIED"


class ContextHandler(LoggingHandler):
    """Exports a record with its dimensions as flat attributes, its message as the body, an exception's
    type, message and stack trace (the SDK's attributes for it), in the current trace."""

    def __init__(self, logger_provider: LoggerProvider, level: int = logging.INFO) -> None:
        super().__init__(level, logger_provider=logger_provider)
        self._loggers: dict[str, Logger] = {}

    def emit(self, record: logging.LogRecord) -> None:
        logger = self._loggers.get(record.name)
        if logger is None:
            logger = self._loggers[record.name] = self._logger_provider.get_logger(record.name)
        dimensions = getattr(record, "custom_dimensions", None)
        attributes: dict[str, Any] = dict(dimensions) if isinstance(dimensions, Mapping) else {}
        number, text = severity(record.levelno)
        exception = record.exc_info[1] if record.exc_info else None
        logger.emit(
            timestamp=int(record.created * 1e9),
            context=get_current(),
            severity_number=number,
            severity_text=text,
            body=record.getMessage(),
            attributes=attributes,
            exception=exception,
        )


def attach(logger_provider: LoggerProvider | None) -> Callable[[], None]:
    """Put the exporting handler on the connector's logger (in place of any OpenTelemetry handler the
    distro put there); answers how to take it off again."""
    if logger_provider is None:
        return lambda: None
    logger = logging.getLogger(LOGGER_NAME)
    for existing in [h for h in logger.handlers if isinstance(h, LoggingHandler)]:
        logger.removeHandler(existing)
    handler = ContextHandler(logger_provider)
    logger.addHandler(handler)

    def detach() -> None:
        logger.removeHandler(handler)
        force_flush = getattr(logger_provider, "force_flush", None)
        if force_flush is not None:
            force_flush()

    return detach
