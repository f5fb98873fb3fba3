"""Entra ID (contract §1): OpenID and instance discovery as MSAL reads them, and the
client-credentials token endpoint per tenant, with Entra's AADSTS errors, honouring a `claims` request
(client capabilities, the answer to a claims challenge: contract §1.5)."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from m365emulator.graph import emulator_of, respond
from m365emulator.tokens import GRAPH_AUDIENCE, VAULT_AUDIENCE, ClaimsRequest, parse_claims_request

GRAPH_IDS = {
    "https://graph.microsoft.com",
    "00000003-0000-0000-c000-000000000000",
    "https://graph.microsoft.com/",
}
RESERVED_SCOPES = {"openid", "profile", "offline_access"}
NO_STORE = {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}


def aad_error(
    request: web.Request, status: int, error: str, code: int, message: str, **extra: Any
) -> web.Response:
    """Entra's error body (contract §1.2) with trace and correlation ids and a timestamp."""
    emu = emulator_of(request)
    trace = str(uuid.uuid4())
    correlation = request.headers.get("client-request-id") or str(uuid.uuid4())
    stamp = emu.clock.now().strftime("%Y-%m-%d %H:%M:%SZ")
    body = {
        "error": error,
        "error_description": (
            f"AADSTS{code}: {message}\r\nTrace ID: {trace}\r\nCorrelation ID: "
            f"{correlation}\r\nTimestamp: {stamp}"
        ),
        "error_codes": [code],
        "timestamp": stamp,
        "trace_id": trace,
        "correlation_id": correlation,
        "error_uri": f"{emu.authority}/error?code={code}",
    }
    body.update(extra)
    return respond(body, status, NO_STORE)


def tenant_not_found(request: web.Request, ref: str) -> web.Response:
    return aad_error(
        request,
        400,
        "invalid_tenant" if request.method == "GET" else "invalid_request",
        90002,
        f"Tenant '{ref}' not found. Check to make sure you have the correct tenant ID and are signing "
        "into the "
        "correct cloud. Check with your subscription administrator, this may happen if there are no active "
        "subscriptions for the tenant.",
    )


async def openid_configuration(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    ref = request.match_info["tenant"]
    if ref.lower() in ("common", "organizations", "consumers"):
        tid = "{tenantid}"
    else:
        tenant = emu.directory.tenant(ref)
        if tenant is None:
            return tenant_not_found(request, ref)
        tid = tenant.id
    base = emu.authority
    v2 = "/v2.0" if request.path.split("/")[2] == "v2.0" else ""
    doc = {
        "token_endpoint": f"{base}/{tid}/oauth2{v2}/token",
        "token_endpoint_auth_methods_supported": [
            "client_secret_post",
            "private_key_jwt",
            "client_secret_basic",
        ],
        "jwks_uri": f"{base}/{tid}/discovery{v2}/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": f"{base}/{tid}/v2.0" if v2 else f"https://sts.windows.net/{tid}/",
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
        "authorization_endpoint": f"{base}/{tid}/oauth2{v2}/authorize",
        "device_authorization_endpoint": f"{base}/{tid}/oauth2{v2}/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{base}/{tid}/oauth2{v2}/logout",
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "nonce", "tid", "ver"],
        "kerberos_endpoint": f"{base}/{tid}/kerberos",
        "tenant_region_scope": "WW",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    }
    return respond(
        doc, headers={"Cache-Control": "max-age=86400, private", "Access-Control-Allow-Origin": "*"}
    )


async def instance_discovery(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    endpoint = request.query.get("authorization_endpoint", "")
    parts = endpoint.split("/")
    tenant = parts[3] if len(parts) > 3 and parts[3] else "common"
    host = emu.authority.split("://", 1)[1]
    return respond(
        {
            "tenant_discovery_endpoint": f"{emu.authority}/{tenant}/v2.0/.well-known/openid-configuration",
            "api-version": "1.1",
            "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
        }
    )


async def jwks(request: web.Request) -> web.Response:
    return respond({"keys": []})


def _resource(scopes: list[str]) -> str | None:
    resources = set()
    for scope in scopes:
        if scope in RESERVED_SCOPES:
            continue
        if not scope.endswith("/.default"):
            return None
        resource = scope[: -len("/.default")]
        resources.add(GRAPH_AUDIENCE if resource in GRAPH_IDS else resource.rstrip("/"))
    if len(resources) != 1:
        return None
    return resources.pop()


def _claims_request(request: web.Request, text: str) -> ClaimsRequest | web.Response:
    """A token request's `claims` (recorded in the stats), or Entra's refusal of a malformed one."""
    if not text:
        return ClaimsRequest()
    try:
        claims = parse_claims_request(text)
    except ValueError:
        return aad_error(
            request,
            400,
            "invalid_request",
            50117,
            "Failed to deserialize policy specified in the request's claim parameter.",
        )
    emulator_of(request).stats.token_claims.append(json.loads(text))
    return claims


async def token(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    ref = request.match_info["tenant"]
    form = await request.post()
    tenant = emu.directory.tenant(ref)
    if tenant is None:
        return tenant_not_found(request, ref)
    grant = form.get("grant_type")
    if grant != "client_credentials":
        return aad_error(
            request,
            400,
            "unsupported_grant_type",
            70003,
            f"The app requested an unsupported grant type '{grant}'. The emulator supports "
            "client_credentials.",
        )
    client_id = str(form.get("client_id") or "")
    secret = form.get("client_secret")
    basic = request.headers.get("Authorization", "")
    if basic.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(basic[6:].strip()).decode()
        except (binascii.Error, UnicodeDecodeError):
            decoded = ":"
        basic_id, _, basic_secret = decoded.partition(":")
        client_id = client_id or unquote(basic_id)
        secret = secret or unquote(basic_secret)
    if not client_id:
        return aad_error(
            request,
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'client_id'.",
        )
    app = emu.directory.apps.get(client_id.lower())
    sp = emu.directory.service_principal(client_id, tenant.id)
    if (
        app is None
        or (not app.multi_tenant and app.home_tenant_id != tenant.id)
        or (sp is not None and sp.deleted)
    ):
        return aad_error(
            request,
            400,
            "unauthorized_client",
            700016,
            f"Application with identifier '{client_id}' was not found in the directory "
            f"'{tenant.display_name}'. "
            "This can happen if the application has not been installed by the administrator of the tenant or "
            "consented to by any user in the tenant. You may have sent your authentication request "
            "to the wrong "
            "tenant.",
        )
    if form.get("client_assertion"):
        return aad_error(
            request,
            401,
            "invalid_client",
            700027,
            "Client assertions are not supported by the emulator; use a secret.",
        )
    if not secret:
        return aad_error(
            request,
            401,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        )
    match = next((s for s in app.secrets if s.value == secret), None)
    if match is None:
        return aad_error(
            request,
            401,
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is the "
            "client secret value, "
            f"not the client secret ID, for a secret added to app '{app.client_id}'.",
        )
    now = emu.clock.now()
    if match.end_date_time is not None and match.end_date_time <= now:
        return aad_error(
            request,
            401,
            "invalid_client",
            7000222,
            f"The provided client secret keys for app '{app.client_id}' are expired. Visit the Azure "
            "portal to "
            f"create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate "
            "credentials for added security: https://aka.ms/certCreds.",
        )
    scopes = str(form.get("scope") or "").split()
    resource = _resource(scopes) if scopes else None
    if resource is None:
        return aad_error(
            request,
            400,
            "invalid_scope",
            1002012 if not scopes else 70011,
            f"The provided value for the input parameter 'scope' is not valid. The scope {' '.join(scopes)} "
            "is not valid. The scope format is invalid; for client credentials it must be "
            "'{resource}/.default'.",
        )
    claims = _claims_request(request, str(form.get("claims") or ""))
    if isinstance(claims, web.Response):
        return claims
    roles = sorted(sp.grants) if sp is not None and resource != VAULT_AUDIENCE else []
    access_token, lifetime = emu.issuer.issue(
        tenant_id=tenant.id,
        client_id=app.client_id,
        sp_id=sp.id
        if sp is not None
        else str(uuid.uuid5(uuid.NAMESPACE_URL, f"{app.client_id}/{tenant.id}")),
        audience=resource,
        roles=roles,
        now=now,
        capabilities=claims.capabilities,
    )
    emu.stats.tokens_issued += 1
    return respond(
        {
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": access_token,
        },
        headers=NO_STORE,
    )


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/common/discovery/instance", instance_discovery)
    r.add_get("/{tenant}/discovery/instance", instance_discovery)
    r.add_get("/{tenant}/v2.0/.well-known/openid-configuration", openid_configuration)
    r.add_get("/{tenant}/.well-known/openid-configuration", openid_configuration)
    r.add_get("/{tenant}/discovery/v2.0/keys", jwks)
    r.add_get("/{tenant}/discovery/keys", jwks)
    r.add_post("/{tenant}/oauth2/v2.0/token", token)
