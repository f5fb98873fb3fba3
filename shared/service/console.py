"""The admin console: signed, expiring, tenant-scoped links, and the console's small use cases.

A console token is `base64url(JSON {tid, exp, nonce, kid}) + "." + base64url(HMAC-SHA256(key, first
part))`, signed with the current version of the connector's `console-link-key` in Key Vault (created at
deployment, else on first use); `kid` names that version, and a check uses the version named (any that
Key Vault holds enabled; a token without `kid`, issued before versions, the current one). It grants its
one tenant until `exp` (Unix seconds); nothing is stored, so a link cannot be revoked one by one: adding
a version (a rotation) and disabling the old one in Key Vault voids every link signed with it. The
console's page and its JSON API are anonymous at the Functions level and check the token themselves,
before anything is read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol

from shared.domain.progress import Progress
from shared.domain.tenants import AuthMode, Tenant
from shared.service import tenant_consent, tenants
from shared.service.commands import parse_reauthorize
from shared.service.context import UsesClock, UsesConfig, UsesDeadLetters, UsesKeys
from shared.service.errors import ConsoleAccessDenied, InvalidInput
from shared.service.keys import CONSOLE_KEY
from shared.service.tenant_consent import ReauthorizePorts
from shared.service.tenants import ProgressPorts, TenantPorts

MAX_TOKEN_LENGTH: Final = 1024


class ConsoleAuthPorts(UsesClock, UsesKeys, Protocol):
    """Checking a console token: the signing key and the time."""


class ConsoleLinkPorts(ConsoleAuthPorts, TenantPorts, UsesConfig, Protocol):
    """Issuing a link to an existing tenant's console."""


class OverviewPorts(ProgressPorts, TenantPorts, UsesDeadLetters, Protocol):
    """The console's first view: the tenant, its progress, its dead letters."""


def _refused(message: str) -> ConsoleAccessDenied:
    return ConsoleAccessDenied(401, "invalid_token", message)


@dataclass(frozen=True, slots=True)
class ConsoleGrant:
    """What a valid token grants: one tenant, until a moment."""

    tenant_id: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class ConsoleLink:
    url: str
    expires_at: datetime


# --- the token (pure) -------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, payload: str) -> str:
    return _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())


def sign_token(
    key: bytes,
    tenant_id: str,
    expires_at: datetime,
    nonce: str | None = None,
    *,
    key_version: str | None = None,
) -> str:
    claims: dict[str, Any] = {
        "tid": tenant_id,
        "exp": int(expires_at.timestamp()),
        "nonce": nonce or secrets.token_urlsafe(12),
    }
    if key_version is not None:
        claims["kid"] = key_version
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    return f"{payload}.{_mac(key, payload)}"


def token_key_version(token: str | None) -> str | None:
    """The key version a token names (`kid`), read before its signature is checked and trusted for
    nothing else; None when it names none or is malformed (the check then refuses it or uses the
    current version)."""
    if not token or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 1:
        return None
    try:
        claims: Any = json.loads(_unb64(token.split(".")[0]))
    except (ValueError, binascii.Error):
        return None
    kid = claims.get("kid") if isinstance(claims, dict) else None
    return kid if isinstance(kid, str) else None


def verify_token(key: bytes | None, token: str | None, now: datetime) -> ConsoleGrant:
    """The grant of a genuine, unexpired token; ConsoleAccessDenied (401) otherwise."""
    if not token:
        raise _refused("a console token is required")
    if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 1:
        raise _refused("the console token is malformed")
    payload, signature = token.split(".")
    if key is None or not hmac.compare_digest(_mac(key, payload).encode(), signature.encode()):
        raise _refused("the console token is not genuine")
    try:
        claims: Any = json.loads(_unb64(payload))
    except (ValueError, binascii.Error):
        raise _refused("the console token is malformed") from None
    tenant_id, expires = (claims.get("tid"), claims.get("exp")) if isinstance(claims, dict) else (None, None)
    if not isinstance(tenant_id, str) or isinstance(expires, bool) or not isinstance(expires, int):
        raise _refused("the console token is malformed")
    expires_at = datetime.fromtimestamp(expires, UTC)
    if expires_at <= now:
        raise ConsoleAccessDenied(401, "expired_token", "the console link has expired")
    return ConsoleGrant(tenant_id, expires_at)


# --- use cases --------------------------------------------------------------------------------------


def parse_ttl(body: dict[str, Any]) -> timedelta:
    """`{"ttl_minutes": n}` (optional) as a lifetime, through its model (`bodies.ConsoleLinkRequest`)."""
    from shared.service.bodies import ConsoleLinkRequest, parse  # pydantic: not at the cold start

    return timedelta(minutes=parse(ConsoleLinkRequest, body).ttl_minutes)


async def issue_link(services: ConsoleLinkPorts, tenant_id: str, ttl: timedelta) -> ConsoleLink:
    """A signed link to the console of this one (existing) tenant."""
    tenant = await tenants.get_tenant(services, tenant_id)
    expires_at = (services.clock.now() + ttl).replace(microsecond=0)
    key = await services.keys.signing(CONSOLE_KEY)
    token = sign_token(key.secret, tenant.tenant_id, expires_at, key_version=key.version)
    return ConsoleLink(f"{services.config.public_base_url}/api/console?token={token}", expires_at)


async def authorize(
    services: ConsoleAuthPorts, token: str | None, tenant_id: str | None = None
) -> ConsoleGrant:
    """Check the token, and that it is for `tenant_id` when a path names one (403 if not)."""
    version = token_key_version(token)
    key = (
        (await services.keys.signing(CONSOLE_KEY)).secret
        if version is None
        else await services.keys.verifying(CONSOLE_KEY, version)
    )
    grant = verify_token(key, token, services.clock.now())
    if tenant_id is not None and tenant_id != grant.tenant_id:
        raise ConsoleAccessDenied(403, "forbidden", "this console link is for another organisation")
    return grant


async def reauthorize(services: ReauthorizePorts, tenant_id: str, body: dict[str, Any]) -> tenants.Connection:
    """Admin consent: a new consent link. The customer's own app: `{"client_secret"}` (and, optionally,
    `client_id` and `client_secret_expires_at`); the client id defaults to the one on record."""
    tenant: Tenant = await tenants.get_tenant(services, tenant_id)
    if tenant.auth_mode is AuthMode.ADMIN_CONSENT and body.get("client_secret") is None:
        return await tenant_consent.reauthorize(services, tenant.tenant_id, None)
    if body.get("client_secret") is None:
        raise InvalidInput("client_secret", "is required: a new secret of the organisation's own app")
    known = tenant.customer_app.client_id if tenant.customer_app else None
    try:
        credential = parse_reauthorize(body, known)
        return await tenant_consent.reauthorize(services, tenant.tenant_id, credential)
    except InvalidInput as error:  # the fields as the console sent them, not as the host API nests them
        field = error.field.removeprefix("auth.")
        raise InvalidInput(field, error.reason, status=error.status) from None


@dataclass(frozen=True, slots=True)
class Overview:
    tenant: Tenant
    progress: Progress
    dead_deliveries: int  # batches of changes the host's webhook never took (they stay in the pull feed)


async def overview(services: OverviewPorts, tenant_id: str) -> Overview:
    tenant = await tenants.get_tenant(services, tenant_id)
    progress = await tenants.tenant_progress(services, tenant, kept=True)  # polled every 3 s
    return Overview(tenant, progress, len(await services.dead_letters.list(tenant.tenant_id)))
