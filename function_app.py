"""The function app the Azure Functions Python worker indexes: registers the blueprints, nothing else."""

import azure.functions as func

from functions import (
    appointments,
    availability,
    consent,
    console,
    graph_webhook,
    mail,
    meta,
    queues,
    schedules,
    tasks,
    tenants_api,
    unmatched,
)

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

for blueprint in (
    meta.bp,
    consent.bp,
    tenants_api.bp,
    appointments.bp,
    mail.bp,
    tasks.bp,
    availability.bp,
    console.bp,
    graph_webhook.bp,
    queues.bp,
    schedules.bp,
    unmatched.bp,
):
    app.register_blueprint(blueprint)
