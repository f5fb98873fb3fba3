"""Log records to telemetry: the connector's records as OpenTelemetry log records, their bound context as
attributes, so tenant, user and invocation arrive as custom dimensions."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from shared.observability import LOGGER_NAME

if TYPE_CHECKING:
    from opentelemetry.sdk._logs import LoggerProvider


def attach(logger_provider: LoggerProvider | None) -> Callable[[], None]:
    """Put the exporting handler on the connector's logger; answers how to take it off again."""
    if logger_provider is None:
        return lambda: None
    from opentelemetry.instrumentation.logging.handler import LoggingHandler

    logger = logging.getLogger(LOGGER_NAME)
    handler = LoggingHandler(logging.INFO, logger_provider=logger_provider)
    logger.addHandler(handler)

    def detach() -> None:
        logger.removeHandler(handler)
        logger_provider.force_flush()

    return detach
