"""The function app the Azure Functions Python worker indexes: registers the blueprints, nothing else."""

import azure.functions as func

from functions import consent, jobs, meta, tenants_api

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

for blueprint in (meta.bp, consent.bp, tenants_api.bp, jobs.bp):
    app.register_blueprint(blueprint)
