"""Graph's change and lifecycle notifications: checked, then turned into per-user jobs.

The webhook must answer within Graph's three-second budget, so nothing here reads a table or calls Graph
for change notifications: the clientState is recomputed from the notification's own tenant and resource
(`shared/domain/signing.py`) with the key version it names (cached per worker; Key Vault is read once
for a version the worker has not met) and compared in constant time; notifications for one user collapse
into one job. A `todoTask` subscription's notifications (resource `users/{id}/todo/lists/{id}/tasks/{id}`)
carry a clientState signed for the user's tasks, so an events clientState never passes for one and the
other way round; the job finds through the subscription index which of the two changed. Forged ones are
dropped and counted. Lifecycle notifications carry no resource, so their clientState is checked against
the subscription index (they are rare).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from shared.domain.signing import client_state_key_version, client_state_valid
from shared.observability import get_logger
from shared.service import jobs
from shared.service.context import UsesKeys, UsesSubscriptionIndex
from shared.service.errors import InvalidInput
from shared.service.jobs import Job, TaskMode
from shared.service.keys import NOTIFICATION_KEY, KeyRing
from shared.service.records import Watched
from shared.service.tenants import TenantPorts

log = get_logger("notifications")


class NotificationPorts(UsesKeys, Protocol):
    """Change notifications: the key their clientState is checked with, and nothing else."""


class LifecyclePorts(NotificationPorts, TenantPorts, UsesSubscriptionIndex, Protocol):
    """Lifecycle notifications: checked against the subscription index and its tenant."""


MAX_VALIDATION_TOKEN: Final = 1024
MAX_BODY: Final = 1_000_000  # Graph batches at most 100 notifications per POST
RESOURCE_RE: Final = re.compile(r"^/?users/([^/]+)/(?:calendar/)?events(?:/[^/]+)?$", re.IGNORECASE)
TASKS_RESOURCE_RE: Final = re.compile(
    r"^/?users/([^/]+)/todo/lists/[^/]+/tasks(?:/[^/]+)?$", re.IGNORECASE
)  # a todoTask subscription's: its clientState is signed for the user's tasks
LIFECYCLE_KINDS: Final = {
    "reauthorizationrequired": "renew",
    "subscriptionremoved": "resubscribe",
    "missed": "sync",
}
TASK_LIFECYCLE_KINDS: Final = {
    "renew": TaskMode.RENEW,
    "resubscribe": TaskMode.RESUBSCRIBE,
    "sync": TaskMode.SYNC,
}


@dataclass(slots=True)
class Received:
    jobs: list[Job] = field(default_factory=list)
    accepted: int = 0
    forged: int = 0
    malformed: int = 0


class ClientStates:
    """Checks clientStates against the notification key's versions, each version's key asked of the
    KeyRing once per POST (Graph batches up to 100 notifications, nearly always under one version)."""

    def __init__(self, keys: KeyRing) -> None:
        self._keys = keys
        self._candidates: dict[str | None, list[bytes]] = {}

    async def genuine(self, directory_id: str, graph_user_id: str, presented: str, watched: str = "") -> bool:
        """Signed for this user's subscription watching `watched` with the version of the notification key
        it names (any version Key Vault holds enabled), or, made before versions, with one this worker
        knows."""
        try:
            version = client_state_key_version(presented)
        except ValueError:
            return False
        candidates = self._candidates.get(version)
        if candidates is None:
            if version is None:
                candidates = await self._keys.known_versions(NOTIFICATION_KEY)
            else:
                key = await self._keys.verifying(NOTIFICATION_KEY, version)
                candidates = [key] if key is not None else []
            self._candidates[version] = candidates
        return any(client_state_valid(k, directory_id, graph_user_id, presented, watched) for k in candidates)


def validation_token(token: str) -> str:
    """The handshake: echo the token, bounded, as text (the edge answers it as text/plain)."""
    if not token or len(token) > MAX_VALIDATION_TOKEN:
        raise InvalidInput("validationToken", f"must be 1-{MAX_VALIDATION_TOKEN} characters")
    return token


def parse_notifications(body: bytes) -> list[dict[str, Any]]:
    if len(body) > MAX_BODY:
        raise InvalidInput("body", f"larger than {MAX_BODY} bytes")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deeply
        raise InvalidInput("body", "is not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("value"), list):
        raise InvalidInput("value", "must be a list of notifications")
    return [item for item in data["value"] if isinstance(item, dict)]


async def receive_changes(services: NotificationPorts, body: bytes) -> Received:
    items = parse_notifications(body)
    states = ClientStates(services.keys)
    received = Received()
    wanted: dict[tuple[str, str], Job] = {}
    for item in items:
        subscription_id, directory_id = item.get("subscriptionId"), item.get("tenantId")
        presented, resource = item.get("clientState"), item.get("resource")
        match = RESOURCE_RE.match(resource) if isinstance(resource, str) else None
        tasks = TASKS_RESOURCE_RE.match(resource) if isinstance(resource, str) and match is None else None
        match = match or tasks
        fields = (subscription_id, directory_id, presented)
        if match is None or not all(isinstance(f, str) and f for f in fields):
            received.malformed += 1
            continue
        assert (
            isinstance(subscription_id, str) and isinstance(directory_id, str) and isinstance(presented, str)
        )
        graph_user_id = match.group(1)
        watched = Watched.TASKS if tasks else ""
        if not await states.genuine(directory_id, graph_user_id, presented, watched):
            received.forged += 1
            continue
        received.accepted += 1
        wanted.setdefault(
            (subscription_id, graph_user_id.lower()),
            jobs.notified(directory_id.lower(), subscription_id, graph_user_id),
        )
    received.jobs = list(wanted.values())
    if received.forged or received.malformed:
        log.warning(
            "notifications dropped: %d forged, %d malformed (of %d)",
            received.forged,
            received.malformed,
            len(items),
            extra={"custom_dimensions": {"forged": received.forged, "malformed": received.malformed}},
        )
    return received


async def receive_lifecycle(services: LifecyclePorts, body: bytes) -> Received:
    items = parse_notifications(body)
    states = ClientStates(services.keys)
    received = Received()
    for item in items:
        subscription_id, presented = item.get("subscriptionId"), item.get("clientState")
        kind = LIFECYCLE_KINDS.get(str(item.get("lifecycleEvent", "")).lower())
        if not isinstance(subscription_id, str) or not isinstance(presented, str) or kind is None:
            received.malformed += 1
            continue
        record = await services.subscription_index.get(subscription_id)
        tenant = await services.tenants.get(record.tenant_id) if record else None
        if record is None or tenant is None:
            received.forged += 1  # unknown to us: nothing to renew
            continue
        watched = Watched.TASKS if record.watches is Watched.TASKS else ""
        if not await states.genuine(tenant.directory_id, record.graph_user_id, presented, watched):
            received.forged += 1
            continue
        received.accepted += 1
        reason = f"lifecycle:{item.get('lifecycleEvent')}"
        if record.watches is Watched.TASKS:
            received.jobs.append(
                jobs.sync_tasks(record.tenant_id, record.staff_id, reason, kind=TASK_LIFECYCLE_KINDS[kind])
            )
        else:
            received.jobs.append(jobs.sync_user(record.tenant_id, record.staff_id, reason, kind=kind))
        log.info("lifecycle %s for subscription %s", item.get("lifecycleEvent"), subscription_id)
    if received.forged or received.malformed:
        log.warning(
            "lifecycle notifications dropped: %d forged, %d malformed", received.forged, received.malformed
        )
    return received
