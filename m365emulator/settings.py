"""Runtime knobs of the emulator, all changeable through `PUT /_emulator/settings`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass
class Settings:
    #: added to every request (Graph, Entra, Key Vault) before it is handled
    latency_ms: float = 0
    #: Outlook limits per app + mailbox (contract §6.1)
    throttle_concurrency: int = 4
    throttle_budget: int = 10_000
    throttle_window_s: float = 600
    #: a request budget per app + tenant (m365emulator/throttling.py): 0 is off
    throttle_tenant_budget: int = 0
    throttle_tenant_window_s: float = 10
    #: subscription validation handshake (contract §5.4)
    validation_timeout_s: float = 10
    #: notification delivery (contract §5.6): a POST slower than this counts as failed and is retried
    delivery_timeout_s: float = 3
    delivery_batch_window_ms: float = 50
    delivery_max_batch: int = 100
    delivery_retry_base_s: float = 1
    delivery_max_retries: int = 6
    #: lifecycle: `reauthorizationRequired` this long before a subscription expires (emulated time)
    reauthorization_before_minutes: float = 15
    lifecycle_check_interval_s: float = 1
    #: subscription lifetimes in minutes (contract §5.2, §12.1): events "under 7 days" as documented, at the
    #: 10,070 minutes Graph has been seen to enforce ("Subscription expiration can only be 10070 minutes...")
    max_lifetime_events_minutes: int = 10_070
    max_lifetime_todo_minutes: int = 4_230
    min_lifetime_minutes: int = 45
    max_subscriptions_per_mailbox: int = 1_000
    #: Exchange Online sending limits per mailbox (README "Mail"): messages per minute, recipients per
    #: message, recipients per rolling 24 hours
    mail_message_rate_per_minute: int = 30
    mail_recipients_per_message: int = 500
    mail_recipients_per_day: int = 10_000
    #: attachments: one POST carries an attachment "under 3 MB"; an upload session takes 3 MB to 150 MB
    mail_attachment_post_max_bytes: int = 3 * 1024 * 1024
    mail_message_max_bytes: int = 150 * 1024 * 1024
    #: how long an upload session's URL stays valid [UNDOC]
    mail_upload_session_minutes: float = 60

    def update(self, changes: dict[str, Any]) -> None:
        known = {f.name: f for f in fields(self)}
        unknown = set(changes) - set(known)
        if unknown:
            raise ValueError(f"unknown settings {sorted(unknown)}")
        for name, value in changes.items():
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise ValueError(f"{name} must be a number")
            if value < 0:
                raise ValueError(f"{name} must not be negative")
            caster = float if known[name].type in ("float", float) else int
            setattr(self, name, caster(value))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
