"""Every path under /api that no other function serves: a JSON 404, not the host's empty one.

The route is a catch-all (`{*path}`), so it must be the route the host tries last. The Functions host maps
its routes in the order of its functions (`WebScriptHostHttpRoutesManager.InitializeHttpFunctionRoutes`,
azure-functions-host) into one `RouteCollection` where the first match wins (`WebJobsRouteBuilder.Build`,
azure-webjobs-sdk-extensions); that order is the functions' names (Azure/azure-functions-host#9876; the
precedence asked for in #3153 is not there). So this function is named to sort after every other and is
registered last; `tests/contract/test_function_index.py` holds both. (The local host ranks routes by
specificity, where a catch-all is last anyway.) A known path asked with a method it does not take also
reaches it, since the host goes on to the next route when a method does not match: that is a 405 with
`Allow`.
"""

from __future__ import annotations

import azure.functions as func

from functions.http import error_response
from functions.openapi import allowed_methods

bp = func.Blueprint()
CATCH_ALL = "zz_unmatched"  # after every other function by name (see above)
ANY_METHOD = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


@bp.function_name(CATCH_ALL)
@bp.route(route="{*path}", methods=ANY_METHOD, auth_level=func.AuthLevel.ANONYMOUS)
async def unmatched(req: func.HttpRequest) -> func.HttpResponse:
    allowed = allowed_methods(str(req.route_params.get("path") or ""))
    if allowed:
        response = error_response(405, "method_not_allowed", f"This path takes {', '.join(allowed)}.")
        response.headers["Allow"] = ", ".join(allowed)
        return response
    return error_response(404, "not_found", "No route of this API has this path.")
