"""The host's webhook endpoint in memory: records what it took, fails on demand."""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.service.errors import DeliveryFailed


@dataclass
class Delivery:
    url: str
    body: bytes
    headers: dict[str, str]


@dataclass
class FakeHostWebhook:
    received: list[Delivery] = field(default_factory=list)
    failures: list[DeliveryFailed] = field(default_factory=list)  # raised, one per post, before accepting

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        if self.failures:
            raise self.failures.pop(0)
        self.received.append(Delivery(url, body, dict(headers)))
        return 204
