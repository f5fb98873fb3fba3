"""Fault injection by rule: answer an error (before or after the operation took effect) or slow down.

A rule matches on method, a path regex and a mailbox (user id or UPN); it fires for its next
`count` matching requests, or with probability `rate`, or (neither given) for every match. A rule with a
`rate` and a `seed` draws from a generator of its own seeded with it, so the same requests in the same
order meet the same faults (a chaos run replays its faults from its seed).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from m365emulator.directory import new_id

When = Literal["before", "after"]


@dataclass
class FaultRule:
    id: str
    status: int | None = None
    code: str | None = None
    message: str | None = None
    retry_after: int | None = None
    delay_ms: float = 0
    method: str | None = None
    path: str | None = None
    mailbox: str | None = None
    count: int | None = None
    rate: float | None = None
    when: When = "before"
    headers: dict[str, str] = field(default_factory=dict)
    seed: int | None = None
    fired: int = 0
    _pattern: re.Pattern[str] | None = None
    _random: random.Random | None = None

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> FaultRule:
        allowed = {
            "status",
            "code",
            "message",
            "retry_after",
            "delay_ms",
            "method",
            "path",
            "mailbox",
            "count",
            "rate",
            "when",
            "headers",
            "seed",
        }
        unknown = set(body) - allowed
        if unknown:
            raise ValueError(f"unknown fault fields {sorted(unknown)}")
        rule = cls(id=new_id(), **body)
        if rule.status is None and not rule.delay_ms:
            raise ValueError("a fault needs a status, a delay_ms, or both")
        if rule.when not in ("before", "after"):
            raise ValueError("when must be 'before' or 'after'")
        if rule.rate is not None and not 0 <= rule.rate <= 1:
            raise ValueError("rate must be between 0 and 1")
        if rule.count is not None and rule.count < 1:
            raise ValueError("count must be at least 1")
        if rule.seed is not None:
            if rule.rate is None or isinstance(rule.seed, bool) or not isinstance(rule.seed, int):
                raise ValueError("seed must be an integer, given with a rate")
            rule._random = random.Random(rule.seed)  # noqa: S311 - not security
        if rule.path:
            rule._pattern = re.compile(rule.path)
        if rule.method:
            rule.method = rule.method.upper()
        if rule.mailbox:
            rule.mailbox = rule.mailbox.lower()
        return rule

    def matches(self, method: str, path: str, mailboxes: tuple[str, ...]) -> bool:
        if self.count is not None and self.fired >= self.count:
            return False
        if self.method and self.method != method:
            return False
        if self._pattern and not self._pattern.search(path):
            return False
        if self.mailbox and self.mailbox not in mailboxes:
            return False
        draw = self._random.random() if self._random is not None else random.random()  # noqa: S311
        return self.rate is None or draw < self.rate

    @property
    def exhausted(self) -> bool:
        return self.count is not None and self.fired >= self.count

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "retry_after": self.retry_after,
            "delay_ms": self.delay_ms,
            "method": self.method,
            "path": self.path,
            "mailbox": self.mailbox,
            "count": self.count,
            "rate": self.rate,
            "when": self.when,
            "headers": dict(self.headers),
            "seed": self.seed,
            "fired": self.fired,
        }


DEFAULT_CODES = {
    400: "BadRequest",
    401: "InvalidAuthenticationToken",
    403: "ErrorAccessDenied",
    404: "ErrorItemNotFound",
    409: "ErrorIrresolvableConflict",
    412: "ErrorIrresolvableConflict",
    429: "TooManyRequests",
    500: "ErrorInternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}


class Faults:
    def __init__(self) -> None:
        self.rules: list[FaultRule] = []

    def add(self, body: dict[str, Any]) -> FaultRule:
        rule = FaultRule.from_json(body)
        self.rules.append(rule)
        return rule

    def remove(self, rule_id: str) -> bool:
        before = len(self.rules)
        self.rules = [r for r in self.rules if r.id != rule_id]
        return len(self.rules) != before

    def clear(self) -> None:
        self.rules.clear()

    def pick(self, method: str, path: str, mailboxes: tuple[str, ...]) -> FaultRule | None:
        """The first matching rule; it counts as fired. Exhausted rules are dropped."""
        if not self.rules:
            return None
        for rule in self.rules:
            if rule.matches(method, path, mailboxes):
                rule.fired += 1
                if rule.exhausted:
                    self.rules = [r for r in self.rules if not r.exhausted]
                return rule
        return None
