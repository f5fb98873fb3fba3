"""The admin-consent redirect: Entra sends the admin's browser here; answer with a page in plain words."""

from __future__ import annotations

import html

import azure.functions as func

from functions.http import handles_errors
from shared.bootstrap import container
from shared.service.tenant_consent import ConsentCallback, ConsentResult, complete_consent

bp = func.Blueprint()


@bp.function_name("consent_callback")
@bp.route(route="consent/callback", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@handles_errors
async def consent_callback(req: func.HttpRequest) -> func.HttpResponse:
    p = req.params
    callback = ConsentCallback(
        state=p.get("state"),
        tenant=p.get("tenant"),
        admin_consent=p.get("admin_consent"),
        error=p.get("error"),
        error_description=p.get("error_description"),
    )
    outcome = await complete_consent(container().services, callback)
    ok = outcome.result is ConsentResult.CONNECTED
    name = outcome.tenant.display_name if outcome.tenant else None
    return func.HttpResponse(
        consent_page(ok, outcome.message, name),
        status_code=200 if ok else 400,
        mimetype="text/html",
        charset="utf-8",
        headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
        },
    )


def consent_page(ok: bool, message: str, organisation: str | None) -> str:
    title = "Connected to Microsoft 365" if ok else "The connection was not completed"
    who = f"<p class=org>{html.escape(organisation)}</p>" if organisation else ""
    next_step = (
        "You can close this window. Calendars start syncing in the background."
        if ok
        else "Nothing was changed. Go back to the application and start the connection again."
    )
    return f"""<!doctype html>
<html lang=en><head><meta charset=utf-8><title>{title}</title>
<meta name=viewport content="width=device-width, initial-scale=1">
<style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}}
h1{{font-size:1.4rem}} .ok{{color:#0a7a2f}} .fail{{color:#b3261e}} .org{{font-weight:600}}</style></head>
<body><h1 class={"ok" if ok else "fail"}>{title}</h1>{who}<p id=message>{html.escape(message)}</p>
<p>{next_step}</p></body></html>"""
