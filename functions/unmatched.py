"""Every path under /api that no other function serves: a JSON 404, not the host's empty one.

The route is a catch-all (`{*path}`). The Functions host orders its routes by specificity before it
matches (a literal segment before a parameter: `WebJobsRouteBuilder.Build` in azure-webjobs-sdk-extensions,
and `devhost/routing.py` does the same), and every other route here starts with a literal segment, so this
one only sees what nothing else took. That includes a known path asked with a method it does not take
(the host tries the next route when a method does not match): it answers 405 with `Allow` then.
"""

from __future__ import annotations

import azure.functions as func

from functions.http import error_response
from functions.openapi import allowed_methods

bp = func.Blueprint()
ANY_METHOD = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


@bp.function_name("unmatched")
@bp.route(route="{*path}", methods=ANY_METHOD, auth_level=func.AuthLevel.ANONYMOUS)
async def unmatched(req: func.HttpRequest) -> func.HttpResponse:
    allowed = allowed_methods(str(req.route_params.get("path") or ""))
    if allowed:
        response = error_response(405, "method_not_allowed", f"This path takes {', '.join(allowed)}.")
        response.headers["Allow"] = ", ".join(allowed)
        return response
    return error_response(404, "not_found", "No route of this API has this path.")
