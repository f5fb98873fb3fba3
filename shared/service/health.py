"""Health: the version, and whether storage and Key Vault answer (each within a short budget)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Protocol


class Pingable(Protocol):
    async def ping(self) -> None: ...


@dataclass(frozen=True, slots=True)
class HealthReport:
    version: str
    checks: dict[str, str]

    @property
    def healthy(self) -> bool:
        return all(state == "ok" for state in self.checks.values())

    def as_json(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.healthy else "degraded",
            "version": self.version,
            "checks": self.checks,
        }


async def check_health(
    version: str, *, storage: Pingable, secrets: Pingable, timeout_seconds: float = 5.0
) -> HealthReport:
    async def probe(dependency: Pingable) -> str:
        try:
            await asyncio.wait_for(dependency.ping(), timeout_seconds)
        except TimeoutError:
            return "timeout"
        except Exception as error:
            return f"error: {type(error).__name__}"
        return "ok"

    storage_state, vault_state = await asyncio.gather(probe(storage), probe(secrets))
    return HealthReport(version, {"storage": storage_state, "key_vault": vault_state})
