"""Key Vault secrets (contract §10), served at the root of its own origin (a second port), because
the SDK parses secret ids as `{vault}/secrets/{name}/{version}`.

Bearer challenge on unauthenticated requests, RBAC-like access (only identities granted on the
vault), set / get / update / list / versions / delete (soft) / get deleted / recover / purge,
attribute and name rules and the real error bodies.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aiohttp import web

from m365emulator.graph import EMULATOR, Handler, endpoint_name
from m365emulator.odata import decode_token, encode_token
from m365emulator.tokens import VAULT_AUDIENCE, InvalidToken

if TYPE_CHECKING:
    from m365emulator.core import Emulator

NAME = re.compile(r"^[0-9a-zA-Z-]{1,127}$")
MAX_VALUE_BYTES = 25 * 1024
RECOVERABLE_DAYS = 90


class VaultError(Exception):
    def __init__(self, status: int, code: str, message: str, inner: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.inner = status, code, message, inner

    def response(self) -> web.Response:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.inner:
            error["innererror"] = {"code": self.inner}
        return web.json_response({"error": error}, status=self.status)


def _not_found(name: str) -> VaultError:
    return VaultError(
        404,
        "SecretNotFound",
        f"A secret with (name/id) {name} was not found in this key vault. If you recently deleted "
        "this secret you "
        "may be able to recover it using the correct recovery command. For help resolving this "
        "issue, please see "
        "https://go.microsoft.com/fwlink/?linkid=2125182",
    )


@dataclass
class SecretVersion:
    version: str
    value: str
    created: int
    updated: int
    enabled: bool = True
    nbf: int | None = None
    exp: int | None = None
    content_type: str | None = None
    tags: dict[str, str] | None = None

    def attributes(self) -> dict[str, Any]:
        attrs: dict[str, Any] = {"enabled": self.enabled}
        if self.nbf is not None:
            attrs["nbf"] = self.nbf
        if self.exp is not None:
            attrs["exp"] = self.exp
        attrs.update(
            {
                "created": self.created,
                "updated": self.updated,
                "recoveryLevel": "Recoverable+Purgeable",
                "recoverableDays": RECOVERABLE_DAYS,
            }
        )
        return attrs


@dataclass
class Secret:
    name: str
    versions: list[SecretVersion] = field(default_factory=list)
    deleted_date: int | None = None
    scheduled_purge: int | None = None

    @property
    def latest(self) -> SecretVersion:
        return self.versions[-1]


class Vault:
    def __init__(self) -> None:
        self.secrets: dict[str, Secret] = {}
        self.deleted: dict[str, Secret] = {}
        self.grants: set[tuple[str, str]] = set()
        self.tenant_id: str | None = None

    def reset(self) -> None:
        self.secrets.clear()
        self.deleted.clear()
        self.grants.clear()
        self.tenant_id = None

    def grant(self, tenant_id: str, client_id: str) -> None:
        self.grants.add((tenant_id, client_id.lower()))

    def set(
        self,
        name: str,
        value: str,
        now: datetime,
        *,
        content_type: str | None = None,
        attributes: dict[str, Any] | None = None,
        tags: dict[str, str] | None = None,
    ) -> tuple[Secret, SecretVersion]:
        _check_name(name)
        if not isinstance(value, str):
            raise VaultError(400, "BadParameter", "Property 'value' is required and must be a string.")
        if len(value.encode()) > MAX_VALUE_BYTES:
            raise VaultError(400, "BadParameter", "Secret value exceeds the maximum size of 25600 bytes.")
        if content_type is not None and len(content_type) > 255:
            raise VaultError(400, "BadParameter", "contentType exceeds 255 characters.")
        if tags is not None and (
            len(tags) > 15 or any(len(k) > 256 or len(str(v)) > 256 for k, v in tags.items())
        ):
            raise VaultError(400, "BadParameter", "At most 15 tags of at most 256 characters are allowed.")
        key = name.lower()
        if key in self.deleted:
            raise VaultError(
                409,
                "Conflict",
                f"Secret {name} is currently in a deleted but recoverable state, and its name cannot "
                "be reused; in "
                "this state, the secret can only be recovered or purged.",
                "ObjectIsDeletedButRecoverable",
            )
        stamp = int(now.timestamp())
        attrs = attributes or {}
        version = SecretVersion(
            uuid.uuid4().hex,
            value,
            stamp,
            stamp,
            enabled=bool(attrs.get("enabled", True)),
            nbf=_int_or_none(attrs.get("nbf")),
            exp=_int_or_none(attrs.get("exp")),
            content_type=content_type,
            tags=tags,
        )
        secret = self.secrets.get(key)
        if secret is None:
            secret = self.secrets[key] = Secret(name)
        secret.versions.append(version)
        return secret, version

    def get(self, name: str, version: str | None = None) -> tuple[Secret, SecretVersion]:
        _check_name(name)
        secret = self.secrets.get(name.lower())
        if secret is None:
            raise _not_found(name)
        if not version:
            return secret, secret.latest
        for v in secret.versions:
            if v.version == version.lower():
                return secret, v
        raise _not_found(name)

    def delete(self, name: str, now: datetime) -> Secret:
        _check_name(name)
        secret = self.secrets.pop(name.lower(), None)
        if secret is None:
            raise _not_found(name)
        secret.deleted_date = int(now.timestamp())
        secret.scheduled_purge = int((now + timedelta(days=RECOVERABLE_DAYS)).timestamp())
        self.deleted[name.lower()] = secret
        return secret

    def get_deleted(self, name: str) -> Secret:
        _check_name(name)
        secret = self.deleted.get(name.lower())
        if secret is None:
            raise VaultError(404, "SecretNotFound", f"Deleted Secret not found: {name}")
        return secret

    def recover(self, name: str) -> Secret:
        secret = self.get_deleted(name)
        del self.deleted[name.lower()]
        secret.deleted_date = secret.scheduled_purge = None
        self.secrets[name.lower()] = secret
        return secret

    def purge(self, name: str) -> None:
        self.get_deleted(name)
        del self.deleted[name.lower()]


def _check_name(name: str) -> None:
    if not NAME.match(name):
        raise VaultError(400, "BadParameter", f"The request URI contains an invalid name: {name}")


def _int_or_none(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise VaultError(400, "BadParameter", "Attributes nbf and exp must be Unix times in seconds.")
    return int(value)


# HTTP --------------------------------------------------------------------------------------------


def _emu(request: web.Request) -> Emulator:
    return request.app[EMULATOR]


def _vault_url(request: web.Request) -> str:
    return f"https://{request.host}"


def _bundle(
    request: web.Request, secret: Secret, version: SecretVersion, *, with_value: bool
) -> dict[str, Any]:
    base = _vault_url(request)
    out: dict[str, Any] = {}
    if with_value:
        out["value"] = version.value
    out["id"] = f"{base}/secrets/{secret.name}/{version.version}"
    if version.content_type is not None:
        out["contentType"] = version.content_type
    out["attributes"] = version.attributes()
    if version.tags:
        out["tags"] = dict(version.tags)
    if secret.deleted_date is not None:
        out["recoveryId"] = f"{base}/deletedsecrets/{secret.name}"
        out["deletedDate"] = secret.deleted_date
        out["scheduledPurgeDate"] = secret.scheduled_purge
    return out


def _item(request: web.Request, secret: Secret, version: SecretVersion, *, versioned: bool) -> dict[str, Any]:
    out = _bundle(request, secret, version, with_value=False)
    if not versioned:
        out["id"] = f"{_vault_url(request)}/secrets/{secret.name}"
    return out


def _page(request: web.Request, items: list[dict[str, Any]], path: str) -> web.Response:
    try:
        size = int(request.query.get("maxresults", "25"))
    except ValueError as exc:
        raise VaultError(400, "BadParameter", "maxresults must be an integer between 1 and 25.") from exc
    if not 1 <= size <= 25:
        raise VaultError(400, "BadParameter", "maxresults must be an integer between 1 and 25.")
    state = decode_token(request.query.get("$skiptoken", "")) if request.query.get("$skiptoken") else None
    offset = int(state.get("o", 0)) if state else 0
    page = items[offset : offset + size]
    nxt = None
    if offset + size < len(items):
        api = quote(request.query.get("api-version", ""))
        token = encode_token({"o": offset + size})
        nxt = f"{_vault_url(request)}{path}?api-version={api}&$skiptoken={token}&maxresults={size}"
    return web.json_response({"value": page, "nextLink": nxt})


async def _json(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw:
        raise VaultError(400, "BadParameter", "The request body is empty.")
    try:
        body = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise VaultError(400, "BadParameter", "The request body is not valid JSON.") from exc
    if not isinstance(body, dict):
        raise VaultError(400, "BadParameter", "The request body must be a JSON object.")
    return body


async def set_secret(request: web.Request) -> web.Response:
    emu = _emu(request)
    body = await _json(request)
    if "value" not in body:
        raise VaultError(400, "BadParameter", "Property 'value' is required.")
    secret, version = emu.vault.set(
        request.match_info["name"],
        body["value"],
        emu.clock.now(),
        content_type=body.get("contentType"),
        attributes=body.get("attributes"),
        tags=body.get("tags"),
    )
    return web.json_response(_bundle(request, secret, version, with_value=True))


async def get_secret(request: web.Request) -> web.Response:
    emu = _emu(request)
    secret, version = emu.vault.get(request.match_info["name"], request.match_info.get("version"))
    if not version.enabled:
        raise VaultError(
            403, "Forbidden", "Operation get is not allowed on a disabled secret.", "SecretDisabled"
        )
    return web.json_response(_bundle(request, secret, version, with_value=True))


async def update_secret(request: web.Request) -> web.Response:
    emu = _emu(request)
    body = await _json(request)
    secret, version = emu.vault.get(request.match_info["name"], request.match_info.get("version"))
    attrs = body.get("attributes") or {}
    if "enabled" in attrs:
        version.enabled = bool(attrs["enabled"])
    if "nbf" in attrs:
        version.nbf = _int_or_none(attrs["nbf"])
    if "exp" in attrs:
        version.exp = _int_or_none(attrs["exp"])
    if "contentType" in body:
        version.content_type = body["contentType"]
    if "tags" in body:
        version.tags = body["tags"]
    version.updated = int(emu.clock.now().timestamp())
    return web.json_response(_bundle(request, secret, version, with_value=False))


async def list_secrets(request: web.Request) -> web.Response:
    vault = _emu(request).vault
    items = [_item(request, s, s.latest, versioned=False) for s in vault.secrets.values()]
    return _page(request, items, "/secrets")


async def list_versions(request: web.Request) -> web.Response:
    secret, _ = _emu(request).vault.get(request.match_info["name"])
    items = [_item(request, secret, v, versioned=True) for v in secret.versions]
    return _page(request, items, f"/secrets/{secret.name}/versions")


async def delete_secret(request: web.Request) -> web.Response:
    emu = _emu(request)
    secret = emu.vault.delete(request.match_info["name"], emu.clock.now())
    return web.json_response(_bundle(request, secret, secret.latest, with_value=False))


async def get_deleted(request: web.Request) -> web.Response:
    secret = _emu(request).vault.get_deleted(request.match_info["name"])
    return web.json_response(_bundle(request, secret, secret.latest, with_value=False))


async def list_deleted(request: web.Request) -> web.Response:
    vault = _emu(request).vault
    items = []
    for s in vault.deleted.values():
        item = _item(request, s, s.latest, versioned=False)
        items.append(item)
    return _page(request, items, "/deletedsecrets")


async def purge_deleted(request: web.Request) -> web.Response:
    _emu(request).vault.purge(request.match_info["name"])
    return web.Response(status=204)


async def recover_deleted(request: web.Request) -> web.Response:
    secret = _emu(request).vault.recover(request.match_info["name"])
    return web.json_response(_bundle(request, secret, secret.latest, with_value=False))


def _challenge(emu: Emulator, message: str) -> web.Response:
    tenant = emu.vault.tenant_id or "common"
    header = f'Bearer authorization="{emu.authority}/{tenant}", resource="{VAULT_AUDIENCE}"'
    return web.json_response(
        {"error": {"code": "Unauthorized", "message": message}},
        status=401,
        headers={"WWW-Authenticate": header},
    )


@web.middleware
async def vault_pipeline(request: web.Request, handler: Handler) -> web.StreamResponse:
    emu = _emu(request)
    emu.stats.requests["KV " + endpoint_name(request)] += 1
    if emu.settings.latency_ms:
        await asyncio.sleep(emu.settings.latency_ms / 1000)
    rule = emu.faults.pick(request.method, "/keyvault" + request.path, ())
    if rule is not None and rule.delay_ms:
        await asyncio.sleep(rule.delay_ms / 1000)
    if rule is not None and rule.status is not None and rule.when == "before":
        emu.stats.faults_injected += 1
        return emu.render_fault(rule, "keyvault", str(uuid.uuid4()))
    if "api-version" not in request.query:
        return VaultError(400, "BadParameter", "The 'api-version' query parameter is missing.").response()
    refused = _authorize(request, emu)
    if refused is not None:
        return refused
    try:
        response = await handler(request)
    except VaultError as err:
        return err.response()
    except web.HTTPNotFound:
        return VaultError(400, "BadParameter", f"The request URI is not valid: {request.path}").response()
    except web.HTTPMethodNotAllowed:
        return VaultError(405, "MethodNotAllowed", f"Method {request.method} is not allowed here.").response()
    if rule is not None and rule.status is not None and rule.when == "after":
        emu.stats.faults_injected += 1
        return emu.render_fault(rule, "keyvault", str(uuid.uuid4()))
    return response


def _authorize(request: web.Request, emu: Emulator) -> web.Response | None:
    """None for a valid vault token of a granted identity; else the challenge or the 403."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not token or scheme.lower() != "bearer":
        return _challenge(emu, "AKV10000: Request is missing a Bearer or PoP token.")
    try:
        claims = emu.issuer.verify(token.strip())
    except InvalidToken:
        return _challenge(emu, "AKV10022: Invalid token.")
    if claims.audience != VAULT_AUDIENCE:
        return _challenge(
            emu, f"AKV10022: Invalid audience. Expected {VAULT_AUDIENCE}, found: {claims.audience}."
        )
    if claims.expires_at <= emu.clock.now().timestamp():
        return _challenge(emu, "AKV10032: Token expired.")
    if (claims.tenant_id, claims.client_id) not in emu.vault.grants:
        return VaultError(
            403,
            "Forbidden",
            "Caller is not authorized to perform action on resource.\r\nIf role assignments, deny "
            "assignments or role "
            "definitions were changed recently, please observe propagation time.\r\n"
            "Caller: "
            f"appid={claims.client_id};oid={claims.sp_id};iss=https://sts.windows.net/{claims.tenant_id}/\r\n"
            f"Vault: {request.host}\r\n",
            "ForbiddenByRbac",
        ).response()
    return None


def build_app(emu: Emulator) -> web.Application:
    app = web.Application(middlewares=[vault_pipeline], client_max_size=1024 * 1024)
    app[EMULATOR] = emu
    r = app.router
    r.add_get("/secrets", list_secrets)
    r.add_put("/secrets/{name}", set_secret)
    r.add_get("/secrets/{name}", get_secret)
    r.add_get("/secrets/{name}/", get_secret)
    r.add_patch("/secrets/{name}/", update_secret)
    r.add_get("/secrets/{name}/versions", list_versions)
    r.add_get("/secrets/{name}/{version}", get_secret)
    r.add_patch("/secrets/{name}/{version}", update_secret)
    r.add_delete("/secrets/{name}", delete_secret)
    r.add_get("/deletedsecrets", list_deleted)
    r.add_get("/deletedsecrets/{name}", get_deleted)
    r.add_delete("/deletedsecrets/{name}", purge_deleted)
    r.add_post("/deletedsecrets/{name}/recover", recover_deleted)
    return app
