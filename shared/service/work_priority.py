"""Whose Graph requests wait when a tenant's request budget runs short: bulk work (a migration, a resync,
the nightly pass, a catch-up of many writes) or work a person is waiting for (a write, a mail, a
notification's sync). The job table sets it for the job it runs (`job_handlers.run_job`); the Graph
adapter's per-tenant budget reads it (`shared/adapters/graph/tenant_budget.py`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from enum import Enum


class Priority(Enum):
    INTERACTIVE = "interactive"
    BULK = "bulk"


_CURRENT: ContextVar[Priority] = ContextVar("graph_priority", default=Priority.INTERACTIVE)


def current() -> Priority:
    """The running job's priority (interactive outside any job: an HTTP trigger's own Graph request)."""
    return _CURRENT.get()


@contextmanager
def working_as(priority: Priority) -> Iterator[None]:
    token = _CURRENT.set(priority)
    try:
        yield
    finally:
        _CURRENT.reset(token)
