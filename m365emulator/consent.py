"""Admin consent (contract §1.4): `/{tenant}/adminconsent` and `/{tenant}/v2.0/adminconsent`.

Per-tenant policy: `page` (a small HTML page with Accept and Cancel, plain forms), `auto-accept`
or `auto-decline`. The redirect URI must match one registered on the app (or extend it with more
path segments); otherwise, as Entra does, an error page and no redirect. What may be registered
follows Entra's restrictions (`registered_redirect_uris`).
"""

from __future__ import annotations

import html
from typing import Any, Final
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from m365emulator.directory import App, Tenant
from m365emulator.graph import emulator_of

DECLINED = "AADSTS65004: User declined to consent to access the app."
MULTI = ("common", "organizations")
# https://learn.microsoft.com/entra/identity-platform/reply-url (work or school accounts' apps)
MAX_REDIRECT_URIS: Final = 256
MAX_REDIRECT_URI_LENGTH: Final = 256
UNSUPPORTED_CHARACTERS: Final = frozenset("!$'(),;")
HTTP_HOSTS: Final = frozenset({"localhost", "127.0.0.1"})


class RedirectUriError(ValueError):
    """A redirect URI Entra would not let an app registration hold."""


def registered_redirect_uris(value: Any) -> list[str]:
    """The redirect URIs an app registration may hold, checked as Entra checks them: absolute, `https`
    (or `http` on localhost / 127.0.0.1), at most 256 characters, none of `! $ ' ( ) , ;`, at most 256
    of them. Raises `RedirectUriError` naming the URI and the rule."""
    if not isinstance(value, list) or not all(isinstance(uri, str) for uri in value):
        raise RedirectUriError("must be a list of URI strings")
    if len(value) > MAX_REDIRECT_URIS:
        raise RedirectUriError(f"at most {MAX_REDIRECT_URIS} redirect URIs per app registration")
    for uri in value:
        parts = urlsplit(uri)
        if len(uri) > MAX_REDIRECT_URI_LENGTH:
            raise RedirectUriError(f"{uri[:40]}…: longer than {MAX_REDIRECT_URI_LENGTH} characters")
        if UNSUPPORTED_CHARACTERS & set(uri):
            raise RedirectUriError(f"{uri}: the characters ! $ ' ( ) , ; are not supported")
        if not parts.netloc or parts.scheme not in ("https", "http"):
            raise RedirectUriError(f"{uri}: must be an absolute https URI")
        if parts.scheme == "http" and (parts.hostname or "") not in HTTP_HOSTS:
            raise RedirectUriError(f"{uri}: http is allowed for localhost and 127.0.0.1 only")
    return list(dict.fromkeys(value))


_STYLE = (
    "body{font-family:Segoe UI,Arial,sans-serif;background:#f2f2f2;margin:0}"
    ".box{background:#fff;max-width:440px;margin:60px auto;padding:32px;box-shadow:0 2px 6px rgba(0,0,0,.2)}"
    "h1{font-size:22px;font-weight:600}ul{padding-left:20px}button{padding:6px 20px;margin-right:8px;"
    "font-size:15px}.primary{background:#0067b8;color:#fff;border:0}.err{color:#a80000}"
)


def _page(title: str, body: str, status: int = 200) -> web.Response:
    text = (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><div class=box>{body}</div></body></html>"
    )
    return web.Response(text=text, status=status, content_type="text/html")


def _error_page(code: int, message: str, status: int = 400) -> web.Response:
    body = (
        "<h1>Sorry, but we're having trouble signing you in.</h1>"
        f"<p class=err id=error data-code=AADSTS{code}>AADSTS{code}: {html.escape(message)}</p>"
    )
    return _page("Sign in to your account", body, status)


def _redirect(uri: str, params: dict[str, str]) -> web.Response:
    sep = "&" if "?" in uri else "?"
    raise web.HTTPFound(uri + sep + urlencode(params))


class _Rejected(Exception):
    def __init__(self, response: web.Response) -> None:
        self.response = response


def _resolve(request: web.Request, params: Any) -> tuple[Tenant | None, App, str]:
    emu = emulator_of(request)
    ref = request.match_info["tenant"]
    tenant: Tenant | None = None
    if ref.lower() not in MULTI:
        tenant = emu.directory.tenant(ref)
        if tenant is None:
            raise _Rejected(
                _error_page(
                    90002,
                    f"Tenant '{ref}' not found. Check to make sure you have the correct tenant ID and "
                    "are signing "
                    "into the correct cloud.",
                )
            )
    client_id = str(params.get("client_id") or "")
    app = emu.directory.apps.get(client_id.lower())
    if app is None:
        raise _Rejected(
            _error_page(
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{tenant.display_name if tenant else ref}'.",
            )
        )
    redirect_uri = str(params.get("redirect_uri") or (app.redirect_uris[0] if app.redirect_uris else ""))
    if not redirect_uri or not app.redirect_allowed(redirect_uri):
        raise _Rejected(
            _error_page(
                50011,
                f"The redirect URI '{redirect_uri}' specified in the request does not match the "
                "redirect URIs "
                f"configured for the application '{app.client_id}'. Make sure the redirect URI sent "
                "in the request "
                "matches one added to your application in the Azure portal.",
            )
        )
    if tenant is not None and not app.multi_tenant and app.home_tenant_id != tenant.id:
        raise _Rejected(
            _error_page(
                700016,
                f"Application with identifier '{app.client_id}' was not found in the directory "
                f"'{tenant.display_name}'. The application is not multi-tenant.",
            )
        )
    return tenant, app, redirect_uri


def _common(params: Any) -> dict[str, str]:
    out = {}
    if params.get("state") is not None:
        out["state"] = str(params.get("state"))
    return out


def _granted_scope(app: App) -> str:
    return " ".join(f"https://graph.microsoft.com/{p}" for p in app.permissions)


def _accept(request: web.Request, tenant: Tenant, app: App, redirect_uri: str, params: Any) -> web.Response:
    emu = emulator_of(request)
    emu.directory.grant(app.client_id, tenant.id)
    query = {"admin_consent": "True", "tenant": tenant.id}
    query.update(_common(params))
    query["scope"] = _granted_scope(app)
    return _redirect(redirect_uri, query)


def _decline(request: web.Request, redirect_uri: str, params: Any) -> web.Response:
    emu = emulator_of(request)
    query = {
        "error": "access_denied",
        "error_description": DECLINED,
        "error_uri": f"{emu.authority}/error?code=65004",
        "admin_consent": "True",
    }
    query.update(_common(params))
    return _redirect(redirect_uri, query)


def _v2(request: web.Request) -> bool:
    return "/v2.0/" in request.path


async def consent_get(request: web.Request) -> web.Response:
    params = request.query
    try:
        tenant, app, redirect_uri = _resolve(request, params)
    except _Rejected as rejected:
        return rejected.response
    if _v2(request) and not params.get("scope"):
        query = {
            "error": "invalid_request",
            "error_description": "AADSTS900144: The request body must contain the following "
            "parameter: 'scope'.",
        }
        query.update(_common(params))
        return _redirect(redirect_uri, query)
    policy = tenant.consent_policy if tenant else "page"
    if tenant is not None and policy == "auto-accept":
        return _accept(request, tenant, app, redirect_uri, params)
    if tenant is not None and policy == "auto-decline":
        return _decline(request, redirect_uri, params)
    return _consent_page(request, tenant, app, redirect_uri)


def _consent_page(request: web.Request, tenant: Tenant | None, app: App, redirect_uri: str) -> web.Response:
    emu = emulator_of(request)
    hidden = "".join(
        f'<input type=hidden name={html.escape(k)} value="{html.escape(str(v))}">'
        for k, v in request.query.items()
        if k in ("client_id", "state", "scope")
    )
    hidden += f'<input type=hidden name=redirect_uri value="{html.escape(redirect_uri)}">'
    chooser = ""
    if tenant is None:
        options = "".join(
            f'<option value="{html.escape(t.id)}">{html.escape(t.display_name)}</option>'
            for t in emu.directory.tenants.values()
        )
        chooser = f"<p><label>Organisation <select name=tenant_choice>{options}</select></label></p>"
    perms = "".join(f"<li>{html.escape(p)}</li>" for p in app.permissions)
    where = html.escape(tenant.display_name) if tenant else "your organisation"
    body = (
        "<h1>Permissions requested</h1>"
        f"<p><b id=app-name>{html.escape(app.display_name)}</b> wants, on behalf of {where}, to:</p>"
        f"<ul id=permissions>{perms}</ul>"
        "<p>Accepting grants these permissions to the app for every user of the organisation.</p>"
        f'<form method=post action="{html.escape(request.path)}">{hidden}{chooser}'
        "<button class=primary type=submit name=action value=accept id=accept>Accept</button>"
        "<button type=submit name=action value=cancel id=cancel>Cancel</button></form>"
    )
    return _page("Permissions requested", body)


async def consent_post(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    form = await request.post()
    try:
        tenant, app, redirect_uri = _resolve(request, form)
    except _Rejected as rejected:
        return rejected.response
    if tenant is None:
        tenant = emu.directory.tenant(str(form.get("tenant_choice") or ""))
        if tenant is None:
            return _error_page(90002, "Choose an organisation.")
        if not app.multi_tenant and app.home_tenant_id != tenant.id:
            return _error_page(700016, f"Application with identifier '{app.client_id}' is not multi-tenant.")
    if form.get("action") == "accept":
        return _accept(request, tenant, app, redirect_uri, form)
    return _decline(request, redirect_uri, form)


def add_routes(app: web.Application) -> None:
    for path in ("/{tenant}/adminconsent", "/{tenant}/v2.0/adminconsent"):
        app.router.add_get(path, consent_get)
        app.router.add_post(path, consent_post)
