"""A small function app that exercises the local host (tests/e2e/test_devhost.py).

Side effects the tests observe go to Azurite: the `devhostresults` queue (output bindings) and the
`devhostattempts` table (written directly, so failing invocations leave a trace too). The table
client is async, created once and reused across invocations: it only works if every async
invocation runs on the same event loop, as in the real worker.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

import azure.functions as func
from azure.data.tables.aio import TableServiceClient

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

_tables: TableServiceClient | None = None


async def _record(partition: str, row: str, **values: Any) -> None:
    global _tables  # noqa: PLW0603 (built once per worker, like the app's clients)
    if _tables is None:
        _tables = TableServiceClient.from_connection_string(os.environ["AzureWebJobsStorage"])  # noqa: SIM112
        await _tables.create_table_if_not_exists("devhostattempts")
    table = _tables.get_table_client("devhostattempts")
    await table.upsert_entity({"PartitionKey": partition, "RowKey": row, **values})


@app.route(route="items/{item_id:int}/{*rest}", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
def echo(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    body = {
        "method": req.method,
        "url": req.url,
        "route_params": dict(req.route_params),
        "params": dict(req.params),
        "body": req.get_body().decode(),
        "x_test": req.headers.get("X-Test"),
        "function_name": context.function_name,
        "invocation_id": context.invocation_id,
    }
    return func.HttpResponse(
        json.dumps(body), status_code=201, mimetype="application/json", headers={"X-Echo": "yes"}
    )


@app.route(route="things/{thing_id:guid}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def thing(req: func.HttpRequest) -> str:
    return f"thing {req.route_params['thing_id']}"


@app.route(route="secured", methods=["GET"])
def secured(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("secret")


@app.route(route="ops/admin-only", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
def admin_only(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("admin")


@app.route(route="fail", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def fail(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("this function always fails")


@app.route(route="enqueue", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@app.queue_output(arg_name="jobs", queue_name="%JOBS_QUEUE%", connection="AzureWebJobsStorage")
def enqueue(req: func.HttpRequest, jobs: func.Out[list[str]]) -> func.HttpResponse:
    jobs.set([json.dumps(item) for item in req.get_json()])
    return func.HttpResponse(status_code=202)


@app.queue_trigger(arg_name="msg", queue_name="%JOBS_QUEUE%", connection="AzureWebJobsStorage")
@app.queue_output(arg_name="results", queue_name="devhostresults", connection="AzureWebJobsStorage")
async def process_job(msg: func.QueueMessage, results: func.Out[str]) -> None:
    job = json.loads(msg.get_body())
    await _record(f"job-{job['id']}", str(msg.dequeue_count), body=msg.get_body().decode(), pid=os.getpid())
    if job.get("sleep"):
        await asyncio.sleep(float(job["sleep"]))
    if job.get("spin"):  # CPU-bound work that holds the event loop, as a long parse or plan would
        time.sleep(float(job["spin"]))
    if job.get("fail"):
        raise RuntimeError(f"job {job['id']} fails on purpose")
    results.set(json.dumps({"id": job["id"], "dequeue_count": msg.dequeue_count, "message_id": msg.id}))


@app.timer_trigger(schedule="%TICK_SCHEDULE%", arg_name="timer", run_on_startup=False)
async def tick(timer: func.TimerRequest) -> None:
    await _record("tick", "latest", past_due=timer.past_due, next=timer.schedule_status.get("Next", ""))


@app.timer_trigger(schedule="0 0 0 1 1 *", arg_name="timer")
@app.queue_output(arg_name="$return", queue_name="devhostresults", connection="AzureWebJobsStorage")
def yearly(timer: func.TimerRequest) -> str:
    return json.dumps({"id": "yearly", "past_due": timer.past_due, "status": timer.schedule_status})
