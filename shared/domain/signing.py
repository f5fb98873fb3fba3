"""The connector's HMAC signatures: Graph subscriptions' clientState, and host webhook deliveries.

A subscription's clientState is an HMAC over the directory id and the Graph user id, so the webhook can
check a notification without reading a table: it recomputes the value from the notification's own
`tenantId` and `resource` and compares in constant time. It names the Key Vault version of the key
that signed it (`v2.{version}.{mac}`), so a worker that holds another version (a race on the key's
first creation, a rotation) fetches the named one and still recognises it. `v1.{mac}` (before versions)
names none: it is checked against the versions the worker knows. A host delivery is signed over its timestamp
and body (`t=<unix seconds>,v1=<hex>`), as Stripe and Cronofy do, so the host can refuse replays.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from typing import Final

CLIENT_STATE_VERSION: Final = "v2"
LEGACY_CLIENT_STATE: Final = "v1"
KEY_VERSION_RE: Final = re.compile(r"^[0-9A-Za-z]{1,64}$")  # Key Vault's versions are 32 hex digits
SIGNATURE_HEADER: Final = "X-Connector-Signature"
MAX_CLOCK_SKEW_SECONDS: Final = 300


def _client_state_mac(key: bytes, directory_id: str, graph_user_id: str, watched: str = "") -> str:
    message = f"{directory_id.lower()}|{graph_user_id.lower()}".encode()
    if watched:
        message += f"|{watched}".encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def client_state(
    key: bytes, key_version: str, directory_id: str, graph_user_id: str, watched: str = ""
) -> str:
    """At most 128 characters, as Graph requires (here 79 with a 32-digit version). `watched` is "" for
    the user's events and names anything else a subscription watches ("tasks"): each subscription of a
    user has its own clientState."""
    if not KEY_VERSION_RE.match(key_version):
        raise ValueError("a key version is 1-64 letters and digits")
    mac = _client_state_mac(key, directory_id, graph_user_id, watched)
    return f"{CLIENT_STATE_VERSION}.{key_version}.{mac}"


def client_state_key_version(presented: str) -> str | None:
    """The key version a clientState names; None for a legacy one (`v1.`), which names none. Raises
    ValueError for anything else (malformed)."""
    parts = presented.split(".")
    if len(parts) == 2 and parts[0] == LEGACY_CLIENT_STATE:
        return None
    if len(parts) == 3 and parts[0] == CLIENT_STATE_VERSION and KEY_VERSION_RE.match(parts[1]):
        return parts[1]
    raise ValueError("not a clientState of the connector")


def client_state_valid(
    key: bytes, directory_id: str, graph_user_id: str, presented: str, watched: str = ""
) -> bool:
    """`presented` was signed with `key` (the version it names, or a legacy one) for this user's
    subscription watching `watched`."""
    presented_mac = presented.rpartition(".")[2]
    expected = _client_state_mac(key, directory_id, graph_user_id, watched)
    return hmac.compare_digest(expected.encode(), presented_mac.encode())


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
