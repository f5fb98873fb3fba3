"""The local function host end to end, against Azurite, with the small app in `devhost_app/`.

That app's host.json: batchSize 4, newBatchThreshold 2, maxDequeueCount 3, visibilityTimeout 1 s,
maxPollingInterval 1 s, functionTimeout 5 s. Its effects land in Azurite: output-binding messages
in `devhostresults`, and a row per queue attempt (and the latest tick) in the `devhostattempts`
table, written with one async table client cached across invocations.
"""

from __future__ import annotations

import base64
import contextlib
import html
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient
from azure.storage.queue import QueueClient, TextBase64EncodePolicy

from devhost.azurite import Azurite
from devhost.host import LocalHost
from devhost.launcher import HostStartError
from tests.fixtures.devhost import RunningHost

pytestmark = pytest.mark.e2e

APP_ROOT = Path(__file__).parent / "devhost_app"
NEVER = "0 0 0 1 1 *"  # the timer's schedule for a host that does not test it (midnight, 1 January)
RESULTS_QUEUE = "devhostresults"
ATTEMPTS_TABLE = "devhostattempts"
FUNCTION_KEY = "test-function-key"
MASTER_KEY = "test-master-key"
GUID = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"


def eventually(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.2) -> Any:
    """Poll `check` until it returns something truthy; fail with its last value after `timeout`."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout} s (last value: {value!r})")


def settings(azurite: Azurite, jobs_queue: str, tick_schedule: str) -> dict[str, Any]:
    return {
        "Values": {
            "AzureWebJobsStorage": azurite.connection_string,
            "JOBS_QUEUE": jobs_queue,
            "TICK_SCHEDULE": tick_schedule,
        },
        "FunctionKeys": {"default": FUNCTION_KEY, "other": "second-function-key"},
        "MasterKey": MASTER_KEY,
    }


@pytest.fixture(scope="module")
def jobs_queue() -> str:
    return f"jobs-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def host(local_host_factory: Callable[..., RunningHost], azurite: Azurite, jobs_queue: str) -> RunningHost:
    return local_host_factory(APP_ROOT, settings(azurite, jobs_queue, "*/1 * * * * *"))


@pytest.fixture(scope="module")
def jobs(azurite: Azurite, jobs_queue: str) -> Iterator[QueueClient]:
    client = jobs_client(azurite, jobs_queue)
    yield client
    client.close()


@pytest.fixture(scope="module")
def attempts(azurite: Azurite) -> Iterator[TableClient]:
    client = TableClient.from_connection_string(azurite.connection_string, ATTEMPTS_TABLE)
    yield client
    client.close()


def jobs_client(azurite: Azurite, queue: str) -> QueueClient:
    """A client for the test app's job queue, encoding as the host decodes (base64)."""
    return QueueClient.from_connection_string(
        azurite.connection_string, queue, message_encode_policy=TextBase64EncodePolicy()
    )


def host_on_own_queue(
    factory: Callable[..., RunningHost], azurite: Azurite, name: str, *extra_args: str
) -> tuple[RunningHost, str]:
    """A second host with a job queue of its own (`name` and a random suffix) and a timer that stays
    quiet; answers the host and its queue's name."""
    queue = f"{name}-{uuid.uuid4().hex[:10]}"
    return factory(APP_ROOT, settings(azurite, queue, NEVER), extra_args=list(extra_args)), queue


def queue_contents(azurite: Azurite, name: str) -> list[str]:
    """The raw (wire) content of the messages in a queue, without taking them."""
    with QueueClient.from_connection_string(azurite.connection_string, name) as client:
        try:
            return [m.content for m in client.peek_messages(max_messages=32)]
        except ResourceNotFoundError:
            return []


def results(azurite: Azurite) -> list[dict[str, Any]]:
    """The result messages, decoded from base64 (which is how the host must have written them)."""
    return [
        json.loads(base64.b64decode(raw, validate=True)) for raw in queue_contents(azurite, RESULTS_QUEUE)
    ]


def result_for(azurite: Azurite, job_id: str) -> dict[str, Any] | None:
    return next((r for r in results(azurite) if r.get("id") == job_id), None)


def attempt_counts(table: TableClient, job_id: str) -> list[int]:
    try:
        rows = table.query_entities("PartitionKey eq @pk", parameters={"pk": f"job-{job_id}"})
        return sorted(int(row["RowKey"]) for row in rows)
    except ResourceNotFoundError:
        return []


# -- start-up --------------------------------------------------------------------------------------


def test_ready_line_reports_url_keys_and_functions(host: RunningHost) -> None:
    assert host.url.startswith("http://127.0.0.1:")
    assert not host.url.endswith(":0")
    assert host.function_key == FUNCTION_KEY
    assert host.master_key == MASTER_KEY
    names = {f["name"] for f in host.functions}
    assert names == {
        "echo",
        "thing",
        "secured",
        "admin_only",
        "fail",
        "enqueue",
        "process_job",
        "tick",
        "yearly",
    }
    echo = next(f for f in host.functions if f["name"] == "echo")
    assert echo["route"] == "items/{item_id:int}/{*rest}"


def test_host_status_is_running(host: RunningHost) -> None:
    with host.client() as client:
        response = client.get("/admin/host/status")
    assert response.status_code == 200
    assert response.json() == {"state": "Running"}


# -- HTTP ------------------------------------------------------------------------------------------


def test_http_call_reaches_its_function(host: RunningHost) -> None:
    with host.client() as client:
        response = client.post(
            "/api/items/42/a/b%20c?x=1&y=two", content=b"hello body", headers={"X-Test": "yes"}
        )
    assert response.status_code == 201
    assert response.headers["x-echo"] == "yes"
    assert response.headers["content-type"] == "application/json"
    echoed = response.json()
    assert echoed["method"] == "POST"
    assert echoed["url"] == f"{host.url}/api/items/42/a/b%20c?x=1&y=two"
    assert echoed["route_params"] == {"item_id": "42", "rest": "a/b c"}
    assert echoed["params"] == {"x": "1", "y": "two"}
    assert echoed["body"] == "hello body"
    assert echoed["x_test"] == "yes"
    assert echoed["function_name"] == "echo"
    assert uuid.UUID(echoed["invocation_id"])


def test_async_function_returning_str_answers_text(host: RunningHost) -> None:
    with host.client() as client:
        response = client.get(f"/api/things/{GUID}")
    assert response.status_code == 200
    assert response.text == f"thing {GUID}"
    assert response.headers["content-type"].startswith("text/plain")


def test_routing_answers_404_and_405(host: RunningHost) -> None:
    with host.client() as client:
        assert client.get("/api/things/not-a-guid").status_code == 404  # guid constraint
        assert client.get("/api/items/abc/x").status_code == 404  # int constraint
        assert client.get("/api/nothing-here").status_code == 404
        assert client.get("/elsewhere").status_code == 404  # outside the route prefix
        not_allowed = client.delete("/api/items/1/x")
        assert not_allowed.status_code == 405
        assert set(not_allowed.headers["allow"].split(", ")) == {"GET", "POST"}


def test_function_level_needs_a_function_key(host: RunningHost) -> None:
    with host.client() as client:
        missing = client.get("/api/secured")
        assert (missing.status_code, missing.content) == (401, b"")
        assert client.get("/api/secured", headers={"x-functions-key": "wrong"}).status_code == 401
        assert client.get("/api/secured", headers={"x-functions-key": FUNCTION_KEY}).text == "secret"
        assert client.get("/api/secured", params={"code": "second-function-key"}).status_code == 200
        assert client.get("/api/secured", params={"code": MASTER_KEY}).status_code == 200


def test_admin_level_needs_the_master_key(host: RunningHost) -> None:
    with host.client() as client:
        assert client.get("/api/ops/admin-only").status_code == 401
        assert client.get("/api/ops/admin-only", headers={"x-functions-key": FUNCTION_KEY}).status_code == 401
        response = client.get("/api/ops/admin-only", headers={"x-functions-key": MASTER_KEY})
        assert (response.status_code, response.text) == (200, "admin")


def test_anonymous_level_needs_no_key(host: RunningHost) -> None:
    with host.client() as client:
        assert client.get(f"/api/things/{GUID}").status_code == 200


def test_failing_function_answers_500_with_empty_body(host: RunningHost) -> None:
    with host.client() as client:
        response = client.get("/api/fail")
    assert (response.status_code, response.content) == (500, b"")


def test_admin_api_needs_the_master_key(host: RunningHost) -> None:
    with host.client(key=FUNCTION_KEY) as client:
        assert client.get("/admin/functions").status_code == 401
        assert client.post("/admin/functions/yearly", json={"input": ""}).status_code == 401
    with host.client(key=MASTER_KEY) as client:
        listed = client.get("/admin/functions")
        assert listed.status_code == 200
        assert "process_job" in {f["name"] for f in listed.json()}
        assert client.post("/admin/functions/no_such_function", json={"input": ""}).status_code == 404


# -- queues ----------------------------------------------------------------------------------------


def test_queued_message_is_processed_once(host: RunningHost, azurite: Azurite, jobs: QueueClient) -> None:
    jobs.send_message(json.dumps({"id": "q1"}))
    result = eventually(lambda: result_for(azurite, "q1"))
    assert result["dequeue_count"] == 1
    assert result["message_id"]


def test_a_batch_of_async_jobs_runs_concurrently(
    host: RunningHost, azurite: Azurite, jobs: QueueClient
) -> None:
    ids = [f"c{n}" for n in range(4)]  # batchSize is 4
    for job_id in ids:
        jobs.send_message(json.dumps({"id": job_id, "sleep": 1.5}))
    started = time.monotonic()
    eventually(lambda: all(result_for(azurite, job_id) for job_id in ids), timeout=15)
    assert time.monotonic() - started < 4.5  # one after another would take 6 s or more


def test_output_binding_messages_land_base64_and_are_processed(
    host: RunningHost, azurite: Azurite, attempts: TableClient
) -> None:
    with host.client() as client:
        response = client.post("/api/enqueue", json=[{"id": "e1"}, {"id": "e2"}])
    assert response.status_code == 202
    eventually(lambda: result_for(azurite, "e1") and result_for(azurite, "e2"))
    # The trigger decoded them as base64, and each was seen once: the binding wrote base64.
    assert attempt_counts(attempts, "e1") == [1]
    assert attempt_counts(attempts, "e2") == [1]
    raw = queue_contents(azurite, RESULTS_QUEUE)
    assert all(base64.b64encode(base64.b64decode(r, validate=True)).decode() == r for r in raw)


def test_failing_message_ends_in_poison_after_max_dequeue_count(
    host: RunningHost, azurite: Azurite, jobs: QueueClient, jobs_queue: str, attempts: TableClient
) -> None:
    payload = json.dumps({"id": "p1", "fail": True})
    jobs.send_message(payload)
    poisoned = eventually(lambda: queue_contents(azurite, f"{jobs_queue}-poison"), timeout=15)
    assert [base64.b64decode(p).decode() for p in poisoned] == [payload]  # content intact, still base64
    assert attempt_counts(attempts, "p1") == [1, 2, 3]  # maxDequeueCount is 3
    assert result_for(azurite, "p1") is None  # outputs are not written when the function fails
    assert eventually(lambda: jobs.get_queue_properties().approximate_message_count == 0)


def test_message_that_is_not_base64_is_poisoned_without_running(
    host: RunningHost, azurite: Azurite, jobs_queue: str, attempts: TableClient
) -> None:
    with QueueClient.from_connection_string(azurite.connection_string, jobs_queue) as plain:
        plain.send_message('{"id": "plain-text"}')  # no TextBase64EncodePolicy: a classic mistake
    eventually(lambda: '{"id": "plain-text"}' in queue_contents(azurite, f"{jobs_queue}-poison"), timeout=15)
    assert attempt_counts(attempts, "plain-text") == []


def test_http_answers_while_a_queue_function_holds_its_event_loop(
    host: RunningHost, jobs: QueueClient, attempts: TableClient, azurite: Azurite
) -> None:
    # As on Flex Consumption, the HTTP triggers scale apart from the queue functions: a job keeping its
    # worker's event loop busy for 3 s does not hold up HTTP answers.
    jobs.send_message(json.dumps({"id": "spin1", "spin": 3}))
    eventually(lambda: attempt_counts(attempts, "spin1") == [1], timeout=10)
    slowest = 0.0
    with host.client() as client:
        for _ in range(10):
            started = time.monotonic()
            assert client.get(f"/api/things/{GUID}").status_code == 200
            slowest = max(slowest, time.monotonic() - started)
    assert result_for(azurite, "spin1") is None  # still spinning while HTTP answered
    assert slowest < 0.5
    eventually(lambda: result_for(azurite, "spin1"), timeout=10)


# -- timers ----------------------------------------------------------------------------------------


def test_timer_runs_on_demand(host: RunningHost, azurite: Azurite) -> None:
    response = host.run_function("yearly")
    assert response.status_code == 202
    result = eventually(lambda: result_for(azurite, "yearly"))
    assert result["past_due"] is False
    assert set(result["status"]) == {"Last", "Next", "LastUpdated"}
    assert result["status"]["Next"].endswith("-01-01T00:00:00+00:00")


def test_timer_fires_on_its_schedule(host: RunningHost, attempts: TableClient) -> None:
    def latest_tick() -> str | None:
        try:
            return str(attempts.get_entity("tick", "latest").metadata["timestamp"])
        except ResourceNotFoundError:
            return None

    first = eventually(latest_tick, timeout=5)
    second = eventually(lambda: (latest_tick() or first) != first and latest_tick(), timeout=5)
    assert second != first
    assert attempts.get_entity("tick", "latest")["past_due"] is False


def test_queue_trigger_runs_on_demand_with_the_input_as_body(host: RunningHost, azurite: Azurite) -> None:
    assert host.run_function("process_job", json.dumps({"id": "manual-q"})).status_code == 202
    result = eventually(lambda: result_for(azurite, "manual-q"))
    assert result["dequeue_count"] == 1


# -- a second host: leases, clean stop, refusals -----------------------------------------------------


def test_long_job_keeps_its_lease_and_sigint_stops_cleanly(
    local_host_factory: Callable[..., RunningHost], azurite: Azurite, attempts: TableClient
) -> None:
    slow_host, queue = host_on_own_queue(local_host_factory, azurite, "slow", "--queue-lease", "2")
    with jobs_client(azurite, queue) as client:
        client.send_message(json.dumps({"id": "slow1", "sleep": 3}))  # longer than the 2 s lease
        eventually(lambda: result_for(azurite, "slow1"), timeout=10)
        assert attempt_counts(attempts, "slow1") == [1]  # renewed, so never redelivered

        client.send_message(json.dumps({"id": "slow2", "sleep": 1.5}))
        eventually(lambda: attempt_counts(attempts, "slow2") == [1], timeout=10)
    assert slow_host.stop() == 0  # SIGINT while slow2 runs: it finishes, then the host exits 0
    assert result_for(azurite, "slow2") is not None
    assert "host stopped" in slow_host.log()


def _workers_started(log: str) -> list[tuple[str, int]]:
    """Each worker process the host started: its functions and its pid."""
    return [
        (functions, int(pid))
        for functions, pid in re.findall(r"worker started functions=(\S+) pid=(\d+)", log)
    ]


def _worker_pids(log: str) -> dict[str, int]:
    return dict(_workers_started(log))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_every_queue_and_timer_function_gets_a_worker_process_that_stops_with_the_host(
    local_host_factory: Callable[..., RunningHost], azurite: Azurite
) -> None:
    split, _ = host_on_own_queue(local_host_factory, azurite, "split")
    workers = _worker_pids(split.log())
    assert set(workers) == {"process_job", "tick", "yearly"}
    assert len(set(workers.values())) == 3
    assert split.process.pid is not None
    front = os.getpriority(os.PRIO_PROCESS, split.process.pid)  # the HTTP group keeps the CPU first
    assert all(os.getpriority(os.PRIO_PROCESS, pid) > front for pid in workers.values())

    assert split.stop() == 0

    assert not any(_alive(pid) for pid in workers.values())
    assert "host stopped" in split.log()


def test_a_worker_process_that_dies_stops_the_host(
    local_host_factory: Callable[..., RunningHost], azurite: Azurite
) -> None:
    grouped, _ = host_on_own_queue(local_host_factory, azurite, "dies", "--scale", "grouped")
    workers = _worker_pids(grouped.log())
    assert list(workers) == ["process_job,tick,yearly"]

    os.kill(workers["process_job,tick,yearly"], signal.SIGKILL)

    assert grouped.process.process is not None
    assert grouped.process.process.wait(20) == 1
    assert "worker process_job,tick,yearly exited" in grouped.log()


def test_with_restart_workers_a_killed_worker_is_started_again_and_its_queue_runs(
    local_host_factory: Callable[..., RunningHost], azurite: Azurite
) -> None:
    kept, queue = host_on_own_queue(local_host_factory, azurite, "revives", "--restart-workers")

    def started() -> list[int]:
        return [pid for f, pid in _workers_started(kept.log()) if f == "process_job"]

    for kills in (1, 2):  # the same function's worker killed again once it came back
        os.kill(started()[-1], signal.SIGKILL)
        eventually(lambda: len(started()) == kills + 1, timeout=60)  # noqa: B023 - awaited in the loop
    first, second = started()[0], started()[-1]
    assert second != first and _alive(second) and not _alive(first)
    assert kept.process.process is not None and kept.process.process.poll() is None
    with jobs_client(azurite, queue) as client:
        client.send_message(json.dumps({"id": "revived1"}))
        eventually(lambda: result_for(azurite, "revived1"), timeout=20)
    assert kept.stop() == 0
    assert not _alive(second)


def test_single_scale_runs_everything_in_one_process(
    local_host_factory: Callable[..., RunningHost], azurite: Azurite
) -> None:
    single, queue = host_on_own_queue(local_host_factory, azurite, "single", "--scale", "single")
    with jobs_client(azurite, queue) as client:
        client.send_message(json.dumps({"id": "single1"}))
        eventually(lambda: result_for(azurite, "single1"), timeout=10)
    assert _worker_pids(single.log()) == {}
    assert single.run_function("yearly").status_code == 202
    assert single.stop() == 0


def test_instances_run_a_queue_function_on_several_processes_sharing_its_queue(
    local_host_factory: Callable[..., RunningHost], azurite: Azurite, attempts: TableClient
) -> None:
    scaled, queue = host_on_own_queue(local_host_factory, azurite, "scaled", "--instances", "2")
    started = _workers_started(scaled.log())
    assert sorted(functions for functions, _ in started) == ["process_job", "process_job", "tick", "yearly"]

    with jobs_client(azurite, queue) as client:
        # Holds one instance's event loop for 4.5 s (under the app's 5 s functionTimeout).
        client.send_message(json.dumps({"id": "busy1", "spin": 4.5}))
        eventually(lambda: attempt_counts(attempts, "busy1") == [1], timeout=10)
        client.send_message(json.dumps({"id": "free1"}))
        eventually(lambda: result_for(azurite, "free1"), timeout=3.5)  # the other instance took it at once

    assert result_for(azurite, "busy1") is None  # still spinning
    busy, free = (attempts.get_entity(f"job-{i}", "1")["pid"] for i in ("busy1", "free1"))
    assert busy != free
    assert {busy, free} <= {pid for functions, pid in started if functions == "process_job"}
    eventually(lambda: result_for(azurite, "busy1"), timeout=10)
    assert scaled.stop() == 0


def _write_app(root: Path, source: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "host.json").write_text(json.dumps({"version": "2.0"}), encoding="utf-8")
    (root / "function_app.py").write_text(source, encoding="utf-8")
    return root


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "import azure.functions as func\napp = func.FunctionApp()\n"
            "@app.route(route='administration/x')\ndef f(req): ...\n",
            "The specified route conflicts with one or more built in routes.",
        ),
        (
            "import azure.functions as func\napp = func.FunctionApp()\n"
            "@app.route(route='x')\n@app.table_output(arg_name='t', table_name='t', connection='C')\n"
            "def f(req, t): ...\n",
            "not supported by the local host",
        ),
        (
            "import azure.functions as func\napp = func.FunctionApp()\nother = func.FunctionApp()\n",
            "More than one FunctionApp",
        ),
        (
            "import azure.functions as func\napp = func.FunctionApp()\n"
            "@app.timer_trigger(schedule='%MISSING_SCHEDULE%', arg_name='t')\ndef f(t): ...\n",
            "'MISSING_SCHEDULE'",
        ),
    ],
    ids=["admin-route", "table-output", "two-apps", "missing-setting"],
)
def test_host_refuses_to_start(
    local_host_factory: Callable[..., RunningHost], tmp_path: Path, source: str, message: str
) -> None:
    app_root = _write_app(tmp_path / "app", source)
    with pytest.raises(HostStartError) as failure:
        local_host_factory(app_root, {"Values": {}}, timeout=30)
    assert "exited with code 2" in str(failure.value)
    assert message in str(failure.value)


# -- the library API, in-process -----------------------------------------------------------------

INPROCESS_APP = """
import asyncio

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="hello/{name:alpha}", methods=["GET"])
async def hello(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(f"hello {req.route_params['name']}", headers={"X-One": "1"})


@app.route(route="named", methods=["GET"], binding_arg_name="resp")
def named(req: func.HttpRequest, resp: func.Out[func.HttpResponse]) -> None:
    resp.set(func.HttpResponse(b"\\x00binary", status_code=207, mimetype="application/octet-stream"))


@app.route(route="slow", methods=["GET"])
async def slow(req: func.HttpRequest) -> func.HttpResponse:
    await asyncio.sleep(30)
    return func.HttpResponse("too late")
"""


async def test_local_host_runs_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app_root = _write_app(tmp_path / "inproc", "")
    (app_root / "host.json").write_text(json.dumps({"version": "2.0", "functionTimeout": "00:00:01"}))
    (app_root / "inprocess_app.py").write_text(INPROCESS_APP, encoding="utf-8")
    monkeypatch.setenv("PYTHON_SCRIPT_FILE_NAME", "inprocess_app.py")  # a module name of its own
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, "inprocess_app", raising=False)
    host = LocalHost(app_root, {"FunctionKeys": {"default": "k"}, "MasterKey": "m"}, port=0)
    async with host:
        assert [f["name"] for f in host.ready_info()["functions"]] == ["hello", "named", "slow"]
        async with httpx.AsyncClient(base_url=host.url) as client:
            response = await client.get("/api/hello/World")
            assert (response.status_code, response.text, response.headers["x-one"]) == (
                200,
                "hello World",
                "1",
            )
            assert (await client.get("/api/hello/W0rld")).status_code == 404
            named = await client.get("/api/named")  # an HTTP output binding not named $return
            assert (named.status_code, named.content) == (207, b"\x00binary")
            assert named.headers["content-type"] == "application/octet-stream"
            started = time.monotonic()
            timed_out = await client.get("/api/slow")  # functionTimeout is 1 s here
            assert timed_out.status_code == 500
            assert time.monotonic() - started < 5
    sys.modules.pop("inprocess_app", None)


# --- the whole local stack (`make run`) -----------------------------------------------------------

REPO_ROOT = Path(__file__).resolve().parents[2]
STACK_START_TIMEOUT = 240.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _free_port_pair() -> int:
    """A free port whose next port is free too: the emulator serves Key Vault on its port + 1 (a free port
    alone was seen to fail the stack's start when another program held the next one)."""
    for _ in range(100):
        port = _free_port()
        with contextlib.ExitStack() as held:
            try:
                for candidate in (port, port + 1):
                    sock = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
                    sock.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return port
    raise AssertionError("no two consecutive free ports")


class Stack:
    """`python -m devhost.stack` (what `make run` runs) as a child process, its state in a folder of the
    test's; `start()` answers its summary, `stop()` is Ctrl-C and answers its stderr."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.state = tmp_path / "devstack"
        self.stderr_log = tmp_path / f"stack-{uuid.uuid4().hex[:6]}.log"
        self.command = [sys.executable, "-m", "devhost.stack", "--state-dir", str(self.state), *args]
        self.process: subprocess.Popen[str] | None = None

    def start(self, last_line: str) -> str:
        """Start and wait for the summary up to the line containing `last_line`."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.stderr_log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.stderr_log, "wb") as errors:
            self.process = process = subprocess.Popen(
                self.command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=errors, text=True, env=env
            )
        stdout = process.stdout
        assert stdout is not None
        out: list[str] = []
        reader = threading.Thread(target=lambda: out.extend(iter(stdout.readline, "")), daemon=True)
        reader.start()
        deadline = time.monotonic() + STACK_START_TIMEOUT
        while time.monotonic() < deadline and reader.is_alive():
            if any(last_line in line for line in list(out)):
                return "".join(out)
            time.sleep(0.2)
        tail = "\n".join(self.log().splitlines()[-60:])
        pytest.fail(f"the stack printed no summary; stdout:\n{''.join(out)}\nstderr:\n{tail}")

    def log(self) -> str:
        return self.stderr_log.read_text(errors="replace")

    def stop(self) -> int | None:
        process, self.process = self.process, None
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        if process.stdout is not None:
            process.stdout.close()
        return process.returncode


def _host_port(summary: str) -> int:
    found = re.search(r"function host\s+http://127\.0\.0\.1:(\d+)", summary)
    assert found is not None, summary
    return int(found.group(1))


def test_stack_on_a_taken_port_links_consent_and_started_again_at_once_keeps_the_port(tmp_path: Path) -> None:
    """`make run` while its port is taken by another program: the host moves to another port, and the
    printed consent link must still take the admin through Entra back to the connector (not AADSTS50011).
    Then Ctrl-C and `make run` again on the port it moved to: the first run's connections closed by the
    host are still in TIME_WAIT on its port, which the servers' own bind (SO_REUSEADDR) accepts; the second
    run must get the same port, not move to a random one (where the consent link would break). One first
    run serves both cases: a stack's start is most of the time either takes."""
    taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    stack = Stack(tmp_path / "first", "--port", str(port), "--emulator-port", str(_free_port_pair()))
    try:
        summary = stack.start(last_line="admin console")
        moved = _host_port(summary)
        host = f"http://127.0.0.1:{moved}"
        link = re.search(r"connect it \(as Contoso's admin, click Accept\): (\S+)", summary)
        assert link is not None, summary
        assert moved != port  # the taken port was not used

        trust = ssl.create_default_context(cafile=str(stack.state / "emulator-ca.pem"))
        with httpx.Client(verify=trust, timeout=30) as browser:
            page = browser.get(link.group(1))
            assert page.status_code == 200, page.text  # the consent page, not AADSTS50011
            form = dict(re.findall(r'<input type=hidden name=(\w+) value="([^"]*)">', page.text))
            form = {name: html.unescape(value) for name, value in form.items()}
            assert form["redirect_uri"] == f"{host}/api/consent/callback"
            accepted = browser.post(link.group(1).split("?")[0], data={**form, "action": "accept"})
            assert accepted.status_code == 302, accepted.text
            assert accepted.headers["location"].startswith(form["redirect_uri"] + "?")
            callback = browser.get(accepted.headers["location"])
        assert callback.status_code == 200, callback.text
        assert "Connected to Microsoft 365" in callback.text
        # The host closes this connection first (Connection: close, and the client reads to the end before
        # it closes its side): the host's side stays in TIME_WAIT.
        with socket.create_connection(("127.0.0.1", moved)) as raw:
            raw.sendall(b"GET /admin/host/status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := raw.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    finally:
        taken.close()
        code = stack.stop()
    assert code == 0, stack.log()[-3000:]
    assert "Unclosed client session" not in stack.log()  # Ctrl-C closes the app's clients in every process
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as plain, pytest.raises(OSError):
        plain.bind(("127.0.0.1", moved))  # the TIME_WAIT is there: a bind without SO_REUSEADDR fails

    again = Stack(tmp_path / "second", "--port", str(moved), "--no-emulator")
    try:
        summary = again.start(last_line="demo organisation")
    finally:
        assert again.stop() == 0, again.log()[-3000:]
    assert _host_port(summary) == moved
    assert "is busy" not in again.log()


def test_stopping_the_host_leaves_no_unclosed_client_session(
    local_host_factory: Callable[..., RunningHost], connector: Any
) -> None:
    """The real app's SDK clients, built in the HTTP process and in a worker by a first request and a
    timer run, are closed when the host stops (the app's composition root, called by the local host)."""
    sample = json.loads((REPO_ROOT / "local.settings.sample.json").read_text(encoding="utf-8"))["Values"]
    with Azurite() as storage:  # not the session's: its queues are the session connector host's
        values = {
            **connector.settings,
            "AzureWebJobsStorage": storage.connection_string,
            "TABLE_PREFIX": f"stop{uuid.uuid4().hex[:8]}",
            "LOCAL_HOST_ON_STOP": sample["LOCAL_HOST_ON_STOP"],  # as `make run` has it
        }
        host = local_host_factory(REPO_ROOT, {"Values": values})
        with host.client(key=host.function_key) as api:
            assert api.get("/api/v1/tenants").status_code == 200  # tables, and Key Vault for the keys
        assert host.run_function("renew_subscriptions").status_code == 202
        eventually(lambda: "invocation finished function=renew_subscriptions" in host.log(), timeout=30)
        assert host.stop() == 0
    log = host.log()
    assert "host stopped" in log
    assert "Unclosed client session" not in log
    assert "Unclosed connector" not in log
