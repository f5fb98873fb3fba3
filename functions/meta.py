"""Anonymous meta routes: health and the OpenAPI document."""

from __future__ import annotations

import azure.functions as func

from functions.http import handles_errors, json_response
from functions.openapi import openapi_document
from shared.bootstrap import container
from shared.service.health import check_health

bp = func.Blueprint()


@bp.function_name("health")
@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@handles_errors
async def health(req: func.HttpRequest) -> func.HttpResponse:
    c = container()
    report = await check_health(c.settings.version, storage=c.router, secrets=c.secrets)
    return json_response(report.as_json(), status=200 if report.healthy else 503)


@bp.function_name("openapi")
@bp.route(route="openapi.json", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def openapi(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(openapi_document())
