"""Structured log lines on stderr: `time level logger message key=value ...` (logfmt-like).

Records may carry `extra={"fields": {...}}` (the host's) or `custom_dimensions` (the app's bound log
context, as Application Insights receives it); records emitted while an invocation runs (the
function's own logging, from its task or its thread) get `invocation_id` added, like the worker's
log context.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, Final, TextIO

from devhost.invoker import current_invocation

NOISY_LOGGERS: Final = ("azure.core.pipeline.policies.http_logging_policy", "aiohttp.access")


def _quote(value: Any) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' "=\n\t'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        # The app's bound context (`custom_dimensions`, as Application Insights shows it), then the host's.
        fields: dict[str, Any] = dict(getattr(record, "custom_dimensions", None) or {})
        fields.update(getattr(record, "fields", None) or {})
        invocation = current_invocation.get()
        if invocation is not None and "invocation_id" not in fields:
            fields["invocation_id"] = invocation
        line = f"{moment} {record.levelname:<7} {record.name} {record.getMessage()}"
        if fields:
            line += " " + " ".join(f"{k}={_quote(v)}" for k, v in fields.items())
        if record.exc_info and record.exc_info[1] is not None:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure_logging(level: int = logging.INFO, stream: TextIO | None = None) -> None:
    """Send every log record (the host's and the app's) to stderr as structured lines."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(LogfmtFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
