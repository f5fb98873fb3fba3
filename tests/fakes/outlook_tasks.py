"""To Do tasks for tests, with sensible defaults."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from shared.domain.outlook_tasks import OutlookTask, TaskStatus

_numbers = itertools.count(1)


def task(task_id: str | None = None, **changes: Any) -> OutlookTask:
    number = next(_numbers)
    base = OutlookTask(
        id=task_id or f"AAMkTASK{number:06d}==",
        change_key=f'W/"tk-{number}"',
        title=f"Task {number}",
        body="",
        body_type="text",
        status=TaskStatus.NOT_STARTED,
        importance="normal",
        due=None,
        start=None,
        reminder_at=None,
        completed_at=None,
        categories=(),
        recurrence=None,
        created_at=datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
        last_modified=datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
    )
    return replace(base, **changes)


def edited(original: OutlookTask, **changes: Any) -> OutlookTask:
    """The task as Outlook reports it after an edit: a new change key."""
    number = next(_numbers)
    return replace(original, change_key=f'W/"tk-{number}"', **changes)
