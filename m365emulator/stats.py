"""Counters the control surface reports: requests per endpoint and mailbox, throttling, notifications."""

from __future__ import annotations

from collections import Counter, deque
from typing import Any


class Stats:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.requests: Counter[str] = Counter()
        self.requests_by_mailbox: Counter[str] = Counter()
        self.statuses: Counter[str] = Counter()
        self.throttled = 0
        self.throttled_by_mailbox: Counter[str] = Counter()
        self.throttled_by_reason: Counter[str] = Counter()  # concurrency, budget, tenant
        # The most requests at once per app + mailbox ("{client id}|{mailbox}"), counted as each arrives,
        # a refused one included: what the client asked of Outlook's 4 (contract §6.1).
        self.concurrency_peak: dict[str, int] = {}
        self.faults_injected = 0
        self.tokens_issued = 0
        self.token_claims: deque[Any] = deque(maxlen=100)  # the `claims` of the last token requests, decoded
        self.notifications_sent = 0
        self.notifications_failed = 0
        self.notifications_retried = 0
        self.notifications_dropped = 0
        self.notifications_duplicated = 0  # notifications a rule sent twice
        self.notifications_reordered = 0  # notifications a rule held and sent in reverse order
        self.notification_posts = 0
        self.lifecycle_sent = 0
        self.validations = 0

    def saw_concurrency(self, app_mailbox: str, at_once: int) -> None:
        if at_once > self.concurrency_peak.get(app_mailbox, 0):
            self.concurrency_peak[app_mailbox] = at_once

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "requests_total": sum(self.requests.values()),
            "requests_by_mailbox": dict(self.requests_by_mailbox),
            "statuses": dict(self.statuses),
            "throttled": self.throttled,
            "throttled_by_mailbox": dict(self.throttled_by_mailbox),
            "throttled_by_reason": dict(self.throttled_by_reason),
            "concurrency_peak": dict(self.concurrency_peak),
            "faults_injected": self.faults_injected,
            "tokens_issued": self.tokens_issued,
            "token_claims": list(self.token_claims),
            "notifications": {
                "sent": self.notifications_sent,
                "failed": self.notifications_failed,
                "retried": self.notifications_retried,
                "dropped": self.notifications_dropped,
                "duplicated": self.notifications_duplicated,
                "reordered": self.notifications_reordered,
                "posts": self.notification_posts,
                "lifecycle_sent": self.lifecycle_sent,
                "validations": self.validations,
            },
        }
