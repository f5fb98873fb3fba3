"""The Graph pipeline: request ids, latency, bearer auth, faults, throttling, stats and error rendering,
for every `/v1.0/` route (the calendar routes of `m365emulator.calendar` included), plus the helpers
handlers use (claims, role checks, JSON in and out, mailbox resolution)."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from aiohttp import web

from m365emulator.directory import User
from m365emulator.errors import GraphError
from m365emulator.odata import parse_prefer
from m365emulator.tokens import InvalidToken, TokenClaims, claims_challenge

if TYPE_CHECKING:
    from m365emulator.core import Emulator

log = logging.getLogger("m365emulator.graph")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

EMULATOR: web.AppKey[Emulator] = web.AppKey("emulator")

DIRECTORY_DENIED = GraphError(
    403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
)
OUTLOOK_DENIED = GraphError(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")


def emulator_of(request: web.Request) -> Emulator:
    return request.app[EMULATOR]


def claims_of(request: web.Request) -> TokenClaims:
    claims: TokenClaims | None = request.get("claims")
    if claims is None:
        raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.")
    return claims


def require_role(
    request: web.Request, roles: tuple[str, ...], denied: GraphError = OUTLOOK_DENIED
) -> TokenClaims:
    claims = claims_of(request)
    if not claims.roles.intersection(roles):
        raise GraphError(denied.status, denied.code, denied.message)
    return claims


def mailbox_user(request: web.Request, ref: str, roles: tuple[str, ...]) -> User:
    """The user behind a mailbox path segment: 404 ErrorInvalidUser, 404 MailboxNotEnabledForRESTAPI,
    403 ErrorAccessDenied without one of `roles`."""
    claims = require_role(request, roles)
    user = emulator_of(request).directory.user(claims.tenant_id, ref)
    if user is None:
        raise GraphError(404, "ErrorInvalidUser", f"The requested user '{ref}' is invalid.")
    if not user.mailbox_enabled:
        raise GraphError(
            404,
            "MailboxNotEnabledForRESTAPI",
            "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
        )
    return user


async def json_body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GraphError(400, "BadRequest", "Unable to read JSON request payload.") from exc
    if not isinstance(body, dict):
        raise GraphError(400, "BadRequest", "The request payload must be a JSON object.")
    return body


def param(body: dict[str, Any], name: str, default: Any = None) -> Any:
    """An action parameter, case-insensitively: kiota sends `Message`, `SaveToSentItems`, `InputIds`."""
    if name in body:
        return body[name]
    lowered = name.lower()
    for key, value in body.items():
        if key.lower() == lowered:
            return value
    return default


def respond(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(data, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
        charset="utf-8",
        headers=headers,
    )


def error_response(err: GraphError, request_id: str, date: str) -> web.Response:
    headers = dict(err.headers)
    return respond(err.body(request_id, date), err.status, headers)


def throttle_body(request_id: str, date: str) -> dict[str, Any]:
    """Contract §6.2, byte for byte in shape."""
    return {
        "error": {
            "code": "TooManyRequests",
            "innerError": {
                "code": "429",
                "date": date,
                "message": "Please retry after",
                "request-id": request_id,
                "status": "429",
            },
            "message": "Please retry again later.",
        }
    }


def path_user_ref(path: str) -> tuple[str | None, bool]:
    """`/v1.0/users/{ref}[/...]` → (the decoded ref, whether the request is mailbox-scoped).

    `/v1.0/users/{ref}` alone is a directory read: Outlook's per-mailbox throttling does not apply.
    """
    parts = path.split("/", 4)
    if len(parts) >= 4 and parts[1] == "v1.0" and parts[2].lower() == "users" and parts[3]:
        ref = unquote(parts[3])
        if "(" in ref or ref.lower() in ("delta", "delta()", "microsoft.graph.delta"):
            return None, False
        return ref, len(parts) == 5 and bool(parts[4])
    return None, False


def endpoint_name(request: web.Request) -> str:
    info = request.match_info
    route = getattr(info, "route", None)
    resource = getattr(route, "resource", None)
    canonical = getattr(resource, "canonical", None) if resource is not None else None
    return f"{request.method} {canonical or 'unmatched'}"


@web.middleware
async def pipeline(request: web.Request, handler: Handler) -> web.StreamResponse:
    emu = emulator_of(request)
    path = request.path
    if path.startswith("/_emulator"):
        return await handler(request)
    if path.startswith("/v1.0"):
        return await _graph(request, handler, emu)
    if path.startswith("/api/gv1.0/"):
        # Outlook's upload-session URLs: pre-authenticated, so no bearer; errors in Graph's envelope.
        return await _plain(request, handler, emu, "graph")
    return await _plain(request, handler, emu, "entra")


async def _plain(request: web.Request, handler: Handler, emu: Emulator, surface: str) -> web.StreamResponse:
    """Entra endpoints and upload sessions: latency, faults and stats, but no bearer auth or throttling."""
    emu.stats.requests[endpoint_name(request)] += 1
    if emu.settings.latency_ms:
        await asyncio.sleep(emu.settings.latency_ms / 1000)
    rule = emu.faults.pick(request.method, request.path, ())
    if rule is not None:
        if rule.delay_ms:
            await asyncio.sleep(rule.delay_ms / 1000)
        if rule.status is not None and rule.when == "before":
            emu.stats.faults_injected += 1
            return emu.render_fault(rule, surface, str(uuid.uuid4()))
    try:
        response = await handler(request)
    except GraphError as err:
        if surface != "graph":
            raise
        request_id = str(uuid.uuid4())
        date = emu.clock.now().strftime("%Y-%m-%dT%H:%M:%S")
        return _finish(error_response(err, request_id, date), {"request-id": request_id}, emu)
    if rule is not None and rule.status is not None and rule.when == "after":
        emu.stats.faults_injected += 1
        return emu.render_fault(rule, surface, str(uuid.uuid4()))
    return response


async def _graph(request: web.Request, handler: Handler, emu: Emulator) -> web.StreamResponse:
    request_id = request.headers.get("client-request-id") or str(uuid.uuid4())
    request["request_id"] = request_id
    request["prefer"] = parse_prefer(request.headers.getall("Prefer", []))
    date = emu.clock.now().strftime("%Y-%m-%dT%H:%M:%S")
    extra = {"request-id": request_id, "client-request-id": request_id}
    throttle_key: tuple[str, str] | None = None
    try:
        claims = _authenticate(request, emu)
        request["claims"] = claims
        mailbox, names = _mailbox(request, emu, claims)
        rule = emu.faults.pick(request.method, request.path, names)
        refused = _admit_tenant(emu, claims, request_id, date)
        if refused is not None:
            return _finish(refused, extra, emu)
        if mailbox != "-":
            refused = _admit(emu, (claims.client_id, mailbox), names, request_id, date)
            if refused is not None:
                return _finish(refused, extra, emu)
            throttle_key = (claims.client_id, mailbox)
        # Service time holds the request's concurrency slot, as it does in Outlook.
        delay = emu.settings.latency_ms + (rule.delay_ms if rule is not None else 0)
        if delay:
            await asyncio.sleep(delay / 1000)
        if rule is not None and rule.status is not None and rule.when == "before":
            emu.stats.faults_injected += 1
            return _finish(emu.render_fault(rule, "graph", request_id), extra, emu)
        try:
            response = await handler(request)
        except web.HTTPNotFound as exc:
            raise _unknown_segment(request) from exc
        except web.HTTPMethodNotAllowed as exc:
            raise GraphError(
                405, "Request_BadRequest", f"The HTTP method '{request.method}' is not allowed."
            ) from exc
        if rule is not None and rule.status is not None and rule.when == "after":
            emu.stats.faults_injected += 1
            return _finish(emu.render_fault(rule, "graph", request_id), extra, emu)
        return _finish(response, extra, emu)
    except GraphError as err:
        return _finish(error_response(err, request_id, date), extra, emu)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        err = GraphError(500, "generalException", "General exception while processing.")
        return _finish(error_response(err, request_id, date), extra, emu)
    finally:
        if throttle_key is not None:
            emu.throttle.leave(throttle_key)


def _mailbox(request: web.Request, emu: Emulator, claims: TokenClaims) -> tuple[str, tuple[str, ...]]:
    """The mailbox a request is about ("-" when none: not throttled) and the names the user goes by
    (for fault rules and stats)."""
    emu.stats.requests[endpoint_name(request)] += 1
    ref, scoped = path_user_ref(request.path)
    if ref is None:
        return "-", ()
    user = emu.directory.user(claims.tenant_id, ref)
    request["user"] = user
    names = (user.id, user.upn.lower()) if user is not None else (ref.lower(),)
    if not scoped:
        return "-", names
    emu.stats.requests_by_mailbox[names[-1]] += 1
    return names[0], names


def _admit(
    emu: Emulator, key: tuple[str, str], names: tuple[str, ...], request_id: str, date: str
) -> web.Response | None:
    """None when the request may run (it then holds a slot), else the 429 to answer."""
    emu.stats.saw_concurrency(f"{key[0]}|{names[-1] if names else key[1]}", emu.throttle.in_flight(key) + 1)
    verdict = emu.throttle.enter(key)
    if verdict is None:
        return None
    emu.stats.throttled += 1
    emu.stats.throttled_by_reason[verdict.reason] += 1
    emu.stats.throttled_by_mailbox[names[-1] if names else key[1]] += 1
    headers = {"Retry-After": str(verdict.retry_after)}
    if verdict.reason == "budget":
        return respond(throttle_body(request_id, date), 429, headers)
    err = GraphError(
        429, "ApplicationThrottled", "Application is over its MailboxConcurrency limit.", headers
    )
    return error_response(err, request_id, date)


def _admit_tenant(emu: Emulator, claims: TokenClaims, request_id: str, date: str) -> web.Response | None:
    """None when the app + tenant budget (off unless set) admits the request, else the 429 to answer,
    naming its scope as Graph does."""
    verdict = emu.throttle.enter_tenant((claims.client_id, claims.tenant_id))
    if verdict is None:
        return None
    emu.stats.throttled += 1
    emu.stats.throttled_by_reason[verdict.reason] += 1
    headers = {
        "Retry-After": str(verdict.retry_after),
        "x-ms-throttle-scope": f"Tenant_Application/ReadWrite/{claims.client_id}/{claims.tenant_id}",
    }
    return respond(throttle_body(request_id, date), 429, headers)


def _finish(response: web.StreamResponse, extra: dict[str, str], emu: Emulator) -> web.StreamResponse:
    for name, value in extra.items():
        response.headers.setdefault(name, value)
    emu.stats.statuses[str(response.status)] += 1
    return response


def _unknown_segment(request: web.Request) -> GraphError:
    segments = [s for s in request.path.split("/") if s][1:]
    last = unquote(segments[-1]) if segments else ""
    return GraphError(400, "BadRequest", f"Resource not found for the segment '{last}'.")


def _authenticate(request: web.Request, emu: Emulator) -> TokenClaims:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not token or scheme.lower() != "bearer":
        raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.")
    try:
        claims = emu.issuer.verify(token.strip())
    except InvalidToken as exc:
        raise GraphError(401, "InvalidAuthenticationToken", str(exc)) from exc
    if claims.is_vault:
        raise GraphError(401, "InvalidAuthenticationToken", "Invalid audience.")
    now = emu.clock.now().timestamp()
    if claims.expires_at <= now:
        raise GraphError(
            401,
            "InvalidAuthenticationToken",
            "Access token has expired or is not yet valid.",
            {"WWW-Authenticate": _bearer_challenge(emu)},
        )
    revoked_at = emu.issuer.revoked_at(claims)
    if revoked_at is not None and "cp1" in claims.capabilities:
        # CAE (contract §1.5): only a client that declared cp1 is challenged; the others keep their token.
        raise GraphError(
            401,
            "InvalidAuthenticationToken",
            "Continuous access evaluation resulted in claims challenge with result: InteractionRequired "
            "and code: TokenIssuedBeforeRevocationTimestamp",
            {
                "WWW-Authenticate": _bearer_challenge(emu)
                + f', error="insufficient_claims", claims="{claims_challenge(revoked_at)}"'
            },
        )
    return claims


def _bearer_challenge(emu: Emulator) -> str:
    return (
        f'Bearer realm="", authorization_uri="{emu.authority}/common/oauth2/authorize", '
        'client_id="00000003-0000-0000-c000-000000000000"'
    )
