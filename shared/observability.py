"""Structured logging with bound context: tenant, user and invocation id on every line.

`bound(...)` binds fields for the duration of a block (a contextvar, so concurrent invocations on one
event loop keep their own context); `ContextFilter` puts them, with the record's own `extra=
{"custom_dimensions": {...}}`, in the record's `custom_dimensions`, which the telemetry log handler
(`shared/telemetry/log_events.py`) exports as attributes and Application Insights shows as custom
dimensions, and `KeyValueFormatter` renders for local runs. Secret values are never passed to a
logger: log names and ids only.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import Final

_CONTEXT: ContextVar[Mapping[str, str]] = ContextVar("log_context", default={})  # noqa: B039 (never mutated)
LOGGER_NAME: Final = "connector"


def get_logger(name: str) -> logging.Logger:
    """A connector logger whose records carry the bound context (logger filters are not inherited)."""
    logger = logging.getLogger(f"{LOGGER_NAME}.{name}")
    if not any(isinstance(f, ContextFilter) for f in logger.filters):
        logger.addFilter(ContextFilter())
    return logger


@contextlib.contextmanager
def bound(**fields: str | None) -> Iterator[None]:
    """Bind log fields (None values are ignored) until the block ends."""
    merged = {**_CONTEXT.get(), **{k: v for k, v in fields.items() if v is not None}}
    token = _CONTEXT.set(merged)
    try:
        yield
    finally:
        _CONTEXT.reset(token)


class ContextFilter(logging.Filter):
    """Puts the bound fields in each record's `custom_dimensions` (its own dimensions win)."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _CONTEXT.get()
        existing = getattr(record, "custom_dimensions", None)
        record.custom_dimensions = {**context, **existing} if isinstance(existing, Mapping) else dict(context)
        return True


class KeyValueFormatter(logging.Formatter):
    """`time level logger message key=value ...` for local runs."""

    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        dims = getattr(record, "custom_dimensions", None) or {}
        extra = " ".join(f"{k}={json.dumps(v) if ' ' in str(v) else v}" for k, v in sorted(dims.items()))
        return f"{base} {extra}".rstrip()


def configure_logging() -> None:
    """Called once by the composition root: context on our records, quieter Azure SDK loggers."""
    logging.getLogger(LOGGER_NAME).setLevel(logging.INFO)
    # The Azure SDKs log every request at INFO (headers included): far too much for Application Insights.
    for noisy in ("azure", "azure.core.pipeline.policies.http_logging_policy", "httpx", "msal", "kiota"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
