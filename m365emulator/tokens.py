"""Access tokens: JWT-shaped (header.payload.signature), HS256 with a key only this process knows.

Real Entra signs with RS256 and publishes its keys; nothing in the connector validates tokens (the
client-credentials doc tells clients not to), so a symmetric key keeps the emulator simple.

Continuous Access Evaluation (contract §1.5): a token request may carry a `claims` parameter, with the
client's capabilities (`{"access_token":{"xms_cc":{"values":["cp1"]}}}`, which azure-identity sends when
CAE is enabled) and the answer to a claims challenge (`{"access_token":{"nbf":{"essential":true,
"value":"<unix time>"}}}`). A revocation event for an app in a tenant (its service principal disabled,
an administrator's revocation) makes Graph refuse the app's tokens issued before it, with a claims
challenge, but only tokens of clients that declared `cp1`; the others live to their expiry.
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
    capabilities: frozenset[str] = frozenset()  # xms_cc, lower-cased

    @property
    def is_vault(self) -> bool:
        return self.audience == VAULT_AUDIENCE


class InvalidToken(Exception):
    """The bearer token is not one this emulator issued, or is malformed."""


@dataclass(frozen=True)
class ClaimsRequest:
    """What a token request's `claims` parameter asks of the access token."""

    capabilities: frozenset[str] = frozenset()  # xms_cc values as asked ("CP1" from azure-identity)
    not_before: int | None = None  # an essential nbf: the token must be issued at or after it


def parse_claims_request(text: str) -> ClaimsRequest:
    """The `claims` parameter (JSON); ValueError when it is not a claims request (AADSTS50117)."""
    try:
        request = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError("not JSON") from exc
    if not isinstance(request, dict) or set(request) - {"id_token", "access_token", "userinfo"}:
        raise ValueError("the top level takes id_token, access_token and userinfo")
    access = request.get("access_token") or {}
    if not isinstance(access, dict) or not all(isinstance(v, dict | None) for v in access.values()):
        raise ValueError("each claim is an object or null")
    values = (access.get("xms_cc") or {}).get("values") or []
    if isinstance(values, str):
        values = [values]
    nbf = access.get("nbf") or {}
    try:
        not_before = int(nbf["value"]) if "value" in nbf else None
    except (TypeError, ValueError) as exc:
        raise ValueError("nbf's value is a unix time") from exc
    return ClaimsRequest(frozenset(str(v) for v in values), not_before)


def claims_challenge(revoked_at: int) -> str:
    """The base64 `claims` of Graph's challenge after a revocation: a token issued from then on."""
    claims = {"access_token": {"nbf": {"essential": True, "value": str(revoked_at)}}}
    return base64.b64encode(json.dumps(claims, separators=(",", ":")).encode()).decode()


class TokenIssuer:
    def __init__(self, authority: str) -> None:
        self._key = secrets.token_bytes(32)
        self.authority = authority
        self._revoked: dict[tuple[str, str], int] = {}  # (tenant id, client id) → revocation time

    def revoke(self, tenant_id: str, client_id: str, at: datetime) -> int:
        """A revocation event for the app in the tenant: its CAE tokens issued before `at` are refused."""
        stamp = int(at.timestamp())
        self._revoked[(tenant_id.lower(), client_id.lower())] = stamp
        return stamp

    def revoked_at(self, claims: TokenClaims) -> int | None:
        """The revocation time when the token was issued before a revocation event, else None."""
        stamp = self._revoked.get((claims.tenant_id.lower(), claims.client_id.lower()))
        return stamp if stamp is not None and claims.issued_at < stamp else None

    def forget_revocations(self) -> None:
        self._revoked.clear()

    def issue(
        self,
        *,
        tenant_id: str,
        client_id: str,
        sp_id: str,
        audience: str,
        roles: list[str],
        now: datetime,
        capabilities: frozenset[str] = frozenset(),
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
        }
        if capabilities:
            payload["xms_cc"] = sorted(capabilities)
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
                capabilities=frozenset(str(c).lower() for c in payload.get("xms_cc", [])),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidToken("Token is missing claims.") from exc
