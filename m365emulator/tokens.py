"""Access tokens: JWT-shaped (header.payload.signature), HS256 with a key only this process knows.

Real Entra signs with RS256 and publishes its keys; nothing in the connector validates tokens (the
client-credentials doc tells clients not to), so a symmetric key keeps the emulator simple.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

GRAPH_AUDIENCE = "https://graph.microsoft.com"
VAULT_AUDIENCE = "https://vault.azure.net"
TOKEN_LIFETIME_S = 3599


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class TokenClaims:
    tenant_id: str
    client_id: str
    sp_id: str
    audience: str
    roles: frozenset[str]
    issued_at: int
    expires_at: int

    @property
    def is_vault(self) -> bool:
        return self.audience == VAULT_AUDIENCE


class InvalidToken(Exception):
    """The bearer token is not one this emulator issued, or is malformed."""


class TokenIssuer:
    def __init__(self, authority: str) -> None:
        self._key = secrets.token_bytes(32)
        self.authority = authority

    def issue(
        self,
        *,
        tenant_id: str,
        client_id: str,
        sp_id: str,
        audience: str,
        roles: list[str],
        now: datetime,
    ) -> tuple[str, int]:
        iat = int(now.timestamp())
        payload: dict[str, Any] = {
            "aud": audience,
            "iss": f"https://sts.windows.net/{tenant_id}/",
            "iat": iat,
            "nbf": iat,
            "exp": iat + TOKEN_LIFETIME_S,
            "aio": "emulator",
            "app_displayname": None,
            "appid": client_id,
            "appidacr": "1",
            "idp": f"https://sts.windows.net/{tenant_id}/",
            "idtyp": "app",
            "oid": sp_id,
            "sub": sp_id,
            "tid": tenant_id,
            "uti": uuid.uuid4().hex[:22],
            "ver": "1.0",
            "xms_cc": ["CP1"],
        }
        if roles:
            payload["roles"] = sorted(roles)
        header = {"typ": "JWT", "alg": "HS256", "kid": "m365emulator"}
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
        signature = hmac.new(self._key, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{_b64(signature)}", TOKEN_LIFETIME_S

    def verify(self, token: str) -> TokenClaims:
        """Check the signature and shape; expiry is the caller's business (it owns the clock)."""
        parts = token.split(".")
        if len(parts) != 3:
            raise InvalidToken("IDX14100: JWT is not well formed, there are no dots (.).")
        signing_input = f"{parts[0]}.{parts[1]}"
        expected = hmac.new(self._key, signing_input.encode(), hashlib.sha256).digest()
        try:
            signature = _unb64(parts[2])
            payload = json.loads(_unb64(parts[1]))
        except (ValueError, json.JSONDecodeError) as exc:
            raise InvalidToken("IDX14102: Unable to decode the token.") from exc
        if not hmac.compare_digest(signature, expected):
            raise InvalidToken("Invalid signature.")
        try:
            return TokenClaims(
                tenant_id=payload["tid"],
                client_id=payload["appid"],
                sp_id=payload["oid"],
                audience=payload["aud"],
                roles=frozenset(payload.get("roles", [])),
                issued_at=int(payload["iat"]),
                expires_at=int(payload["exp"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidToken("Token is missing claims.") from exc
