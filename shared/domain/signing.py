"""The connector's HMAC signatures: Graph subscriptions' clientState, and host webhook deliveries.

A subscription's clientState is an HMAC over the directory id and the Graph user id, so the webhook can
check a notification without reading a table: it recomputes the value from the notification's own
`tenantId` and `resource` and compares in constant time. A host delivery is signed over its timestamp
and body (`t=<unix seconds>,v1=<hex>`), as Stripe and Cronofy do, so the host can refuse replays.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Final

CLIENT_STATE_VERSION: Final = "v1"
SIGNATURE_HEADER: Final = "X-Connector-Signature"
MAX_CLOCK_SKEW_SECONDS: Final = 300


def client_state(key: bytes, directory_id: str, graph_user_id: str, watched: str = "") -> str:
    """At most 128 characters, as Graph requires (here 46). `watched` is "" for the user's events and names
    anything else a subscription watches ("tasks"): each subscription of a user has its own clientState."""
    message = f"{directory_id.lower()}|{graph_user_id.lower()}".encode()
    if watched:
        message += f"|{watched}".encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return f"{CLIENT_STATE_VERSION}.{base64.urlsafe_b64encode(digest).decode().rstrip('=')}"


def client_state_valid(
    key: bytes, directory_id: str, graph_user_id: str, presented: str, watched: str = ""
) -> bool:
    expected = client_state(key, directory_id, graph_user_id, watched)
    return hmac.compare_digest(expected.encode(), presented.encode())


def sign_delivery(secret: bytes, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def delivery_signature_valid(secret: bytes, header: str, body: bytes, now: int) -> bool:
    """What a host does with a delivery (and what the tests do): check the signature and its age."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields.get("t", ""))
    except ValueError:
        return False
    if abs(now - timestamp) > MAX_CLOCK_SKEW_SECONDS:
        return False
    expected = sign_delivery(secret, timestamp, body)
    return hmac.compare_digest(expected.encode(), header.encode())
