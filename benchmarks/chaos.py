"""The chaos run: host writes and Outlook changes at once, under the faults Microsoft 365 and Azure show,
then a check that nothing was lost or duplicated and every staff member converged.

    .venv/bin/python -m benchmarks.chaos [--seed N] [--minutes 10] [--users 4] [--rate 2] [--settle 240]

Starts Azurite (on disk, so it can be restarted), the Microsoft 365 emulator and the local function host
(`--restart-workers`, a short queue lease), connects an organisation of `--users` staff members (mail
switched on), then for `--minutes`:

- the host writes, `--rate` a second in all: appointments (new, moved to other staff and times, deleted),
  To Do tasks (new, retitled, deleted) and mail (sent once each), through the host API, each write
  repeated until the API takes it (as a host does when storage is briefly away);
- Outlook changes at half that rate through Graph (the connector app's token, as a user's Outlook would):
  events made, edited and deleted in the staff calendars, and tasks made, edited and deleted in the
  connector's To Do list;
- about every `--fault-every` seconds a fault, chosen at random: Graph answering 429 with Retry-After or
  503 (before or after the change took effect), an answer slower than the connector's 30 s client timeout
  (the change taking effect meanwhile), notifications dropped, duplicated or reordered, a user's delta
  tokens expired (`syncStateNotFound` / 410), a subscription removed with or without its
  `subscriptionRemoved` lifecycle notification, a worker process killed (SIGKILL, mid-job when one runs)
  and Azurite restarted (down for a few seconds).

Then the faults stop and it waits for quiet (no job queued, no invocation starting or ending for 3 s), runs
the renewal timer once as its schedule would (it recreates subscriptions Graph lost), and checks, until
`--settle` seconds passed:

- each host appointment is one event in each of its staff's calendars with its subject and times, and none
  elsewhere (a deleted one nowhere); each host task one To Do task linked to it with its title (a deleted
  one none); each mail delivered exactly once;
- each event and task made in Outlook reached the feed: announced created once, the last change equal to
  what Outlook holds (or a deletion when it is gone), no change twice in a row, none of the connector's
  own writes echoed; every change on the feed reached the host's webhook, more than once only under the
  same `X-Connector-Delivery` (deliveries are at least once; the host deduplicates on that id);
- every staff member `synced`.

A calendar or To Do list whose Outlook-made change was lost with a dropped notification heals by the
connector's catch-up a little after the mailbox's last notification (`shared/service/follow_ups.py`),
a delayed job the quiet does not see: the check goes on for at least that long (`--settle` is raised to
`FOLLOW_UP_AFTER` and a minute more). If the check does not pass within `--settle` seconds the run says
so, asks for the tenant's resync as an admin would (`POST /api/v1/tenants/{tenant}/resync`) and checks
again, as a fallback: a convergence that needed that resync is a finding, printed as such
(`needed_admin_resync`). The seed is printed first, to replay a run (the order of events between
processes is not replayed, only every choice the run makes). Figures last; exit status 1 when anything was
lost, duplicated or did not converge.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import random
import secrets
import signal
import ssl
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import httpx
import psutil

from benchmarks.sync_bench import HostLog, free_port, machine
from devhost.azurite import Azurite
from devhost.launcher import HostProcess
from m365emulator.control import ControlClient
from m365emulator.process import EmulatorProcess
from shared.domain.mail import MAIL_PROPERTY_ID
from shared.domain.signing import SIGNATURE_HEADER, delivery_signature_valid
from shared.domain.tasks import TASK_LINK_APPLICATION
from shared.service.follow_ups import FOLLOW_UP_AFTER
from shared.service.keys import HOST_WEBHOOK_SECRET
from tests.fixtures.host_receiver import HostReceiver, ReceivedDelivery, start_receiver

ROOT: Final = Path(__file__).resolve().parents[1]
PERMISSIONS: Final = [
    "Calendars.ReadWrite",
    "MailboxSettings.Read",
    "User.Read.All",
    "Tasks.ReadWrite.All",
    "Mail.ReadWrite",
    "Mail.Send",
    "OnlineMeetings.ReadWrite.All",
]
TASK_LIST: Final = "Tasks from the host"
QUEUES: Final = ("tenant-jobs", "sync-jobs", "outlook-writes", "host-deliveries")
JOB_FUNCTIONS: Final = ("tenant_job", "sync_job", "outlook_write", "host_delivery")
DELIVERY_HEADER: Final = "x-connector-delivery"
QUEUE_LEASE_S: Final = 20  # a killed worker's message comes back this soon
CLIENT_TIMEOUT_S: Final = 30  # the connector's Graph client (shared/adapters/graph/client.py)
# The check waits at least through the catch-up queued by the last notification (a delayed message).
SETTLE_AT_LEAST_S: Final = FOLLOW_UP_AFTER.total_seconds() + 60
FAULT_KINDS: Final = (
    "throttled_429",
    "unavailable_503",
    "slow_past_timeout",
    "notifications_dropped",
    "notifications_duplicated",
    "notifications_reordered",
    "delta_token_expired",
    "subscription_removed_told",
    "subscription_removed_silently",
    "worker_killed",
    "azurite_restarted",
)


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


# --- the stack ----------------------------------------------------------------------------------------------


@dataclass
class Stack:
    azurite: Azurite
    ready: dict[str, Any]
    host: HostProcess
    client_id: str
    client_secret: str
    receiver: HostReceiver
    log: HostLog

    def control(self) -> ControlClient:
        return ControlClient(self.ready["control"], self.ready["ca_file"], timeout=60)

    def api(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.host.url, headers={"x-functions-key": self.host.function_key}, timeout=60
        )

    def visible_messages(self, queue: str) -> int:
        from azure.storage.queue import QueueClient

        with QueueClient.from_connection_string(self.azurite.connection_string, queue) as client:
            try:
                return len(client.peek_messages(max_messages=32))
            except Exception:  # not created yet, or storage is restarting
                return 0

    def workers(self) -> list[psutil.Process]:
        assert self.host.pid is not None
        return [p for p in psutil.Process(self.host.pid).children() if "--worker" in p.cmdline()]


@contextlib.contextmanager
def running_stack(workdir: Path) -> Iterator[Stack]:
    log_path = workdir / "host.log"
    say(f"host log: {log_path}")
    with contextlib.ExitStack() as stack:
        azurite = Azurite(location=workdir / "azurite")
        stack.callback(azurite.stop)
        azurite.start()
        emulator = EmulatorProcess(workdir / "emulator", seed="demo", ready_timeout_s=120)
        stack.callback(emulator.stop)
        ready = emulator.start()
        say(f"emulator log: {emulator.log_file}")
        webhook_secret = secrets.token_urlsafe(32)
        receiver, server = start_receiver(webhook_secret.encode())
        stack.callback(server.shutdown)
        port = free_port()
        secret = secrets.token_urlsafe(30)
        secret_name = f"graph-client-secret-{uuid.uuid4().hex[:8]}"

        async def prepare() -> str:
            async with ControlClient(ready["control"], ready["ca_file"]) as control:
                app = await control.create_app(
                    "Calendar connector (chaos)",
                    ready["platform_tenant_id"],
                    multi_tenant=True,
                    redirect_uris=[f"http://127.0.0.1:{port}/api/consent/callback"],
                    permissions=PERMISSIONS,
                    secrets=[{"value": secret}],
                )
                await control.set_vault_secret(secret_name, secret)
                await control.set_vault_secret(HOST_WEBHOOK_SECRET, webhook_secret)
                return str(app["client_id"])

        client_id = asyncio.run(prepare())
        values = {
            "AzureWebJobsStorage": azurite.connection_string,
            "KEY_VAULT_URL": ready["keyvault"],
            "GRAPH_CLIENT_ID": client_id,
            "GRAPH_CLIENT_SECRET_NAME": secret_name,
            "GRAPH_AUTHORITY_HOST": ready["authority"],
            "GRAPH_BASE_URL": ready["graph"],
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
            "RENEWAL_SCHEDULE": "0 0 0 1 1 *",
            "NIGHTLY_RESYNC_SCHEDULE": "0 0 0 1 1 *",
            "TLS_CA_BUNDLE": ready["ca_file"],
            "AZURE_TENANT_ID": ready["platform_tenant_id"],
            "AZURE_CLIENT_ID": ready["platform_client_id"],
            "AZURE_CLIENT_SECRET": ready["platform_client_secret"],
            "AZURE_AUTHORITY_HOST": ready["authority"],
            "TABLE_PREFIX": f"chaos{uuid.uuid4().hex[:8]}",
            "HOST_WEBHOOK_URL": receiver.url,
            "HOST_WEBHOOK_RETRY_SECONDS": "1",
            "HOST_WEBHOOK_MAX_ATTEMPTS": "5",
        }
        settings = {
            "IsEncrypted": False,
            "Values": values,
            "FunctionKeys": {"default": secrets.token_urlsafe(24)},
            "MasterKey": secrets.token_urlsafe(24),
        }
        settings_path = workdir / "local.settings.json"
        settings_path.write_text(json.dumps(settings), encoding="utf-8")
        host = HostProcess(
            ROOT,
            settings_path,
            port=port,
            log_path=log_path,
            extra_args=["--restart-workers", "--queue-lease", str(QUEUE_LEASE_S)],
        )
        stack.callback(host.stop)
        host.start()
        yield Stack(azurite, ready, host, client_id, secret, receiver, HostLog(log_path))


# --- what the run did, and what it expects ------------------------------------------------------------------


@dataclass
class Appointment:
    subject: str
    staff: list[str]
    days: int
    hour: int
    deleted: bool = False


@dataclass
class Task:
    staff: str
    title: str
    deleted: bool = False


@dataclass
class Run:
    rng: random.Random
    domain: str = ""
    tenant_id: str = ""
    staff: dict[str, str] = field(default_factory=dict)  # staff id -> UPN
    appointments: dict[str, Appointment] = field(default_factory=dict)
    tasks: dict[str, Task] = field(default_factory=dict)
    mail: set[str] = field(default_factory=set)
    unsure: set[str] = field(default_factory=set)  # host writes the API never took (ids)
    outlook_events: dict[str, list[str]] = field(default_factory=dict)  # upn -> ids the run made
    outlook_tasks: dict[str, list[str]] = field(default_factory=dict)
    list_ids: dict[str, str] = field(default_factory=dict)  # upn -> the connector's To Do list
    writes: Counter[str] = field(default_factory=Counter)
    outlook: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    counter: int = 0
    redelivered: int = 0  # changes posted again under the same delivery id (the host deduplicates them)
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    def lock(self, item_id: str) -> asyncio.Lock:
        """One write at a time per item, so what the run expects is the order the API took them in."""
        return self.locks.setdefault(item_id, asyncio.Lock())

    def next(self) -> int:
        self.counter += 1
        return self.counter


def wall(days: int, hour: int) -> str:
    moment = (datetime.now(UTC) + timedelta(days=days)).replace(hour=hour, minute=0, second=0, microsecond=0)
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


async def host_call(
    api: httpx.AsyncClient, method: str, path: str, body: Any = None
) -> httpx.Response | None:
    """The host's request, repeated (same body) until the API answers below 500: a host retries a write
    that met an outage. None when it never did within two minutes."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            answer = await api.request(method, path, json=body)
            if answer.status_code < 500:
                return answer
        except httpx.HTTPError:
            pass
        await asyncio.sleep(1)
    return None


def taken(answer: httpx.Response | None, item_id: str, run: Run) -> bool:
    """Whether the API took the write; one it never answered (below 500) leaves the item unsure."""
    if answer is None:
        run.unsure.add(item_id)
        return False
    return answer.status_code in (200, 201, 202, 204)


async def write_appointment(api: httpx.AsyncClient, run: Run, base: str, n: int) -> None:
    rng = run.rng
    live = sorted(a for a, v in run.appointments.items() if not v.deleted)
    existing = bool(live) and rng.random() < 0.5
    appointment_id = rng.choice(live) if existing else f"a{n}"
    removing = existing and rng.random() < 0.3
    wanted = Appointment(
        f"appt {appointment_id} r{n}",
        rng.sample(sorted(run.staff), rng.randint(1, min(2, len(run.staff)))),
        rng.randint(1, 20),
        rng.randint(7, 18),
    )
    path = f"{base}/appointments/{appointment_id}"
    async with run.lock(appointment_id):
        if appointment_id in run.unsure or (existing and run.appointments[appointment_id].deleted):
            return
        if removing:
            if taken(await host_call(api, "DELETE", path), appointment_id, run):
                run.appointments[appointment_id].deleted = True
                run.writes["appointment_deleted"] += 1
            return
        body = {
            "subject": wanted.subject,
            "start": wall(wanted.days, wanted.hour),
            "end": wall(wanted.days, wanted.hour + 1),
            "time_zone": "UTC",
            "staff_ids": wanted.staff,
        }
        if taken(await host_call(api, "PUT", path, body), appointment_id, run):
            run.appointments[appointment_id] = wanted
            run.writes["appointment_updated" if existing else "appointment_created"] += 1


async def write_task(api: httpx.AsyncClient, run: Run, base: str, n: int) -> None:
    rng = run.rng
    live = sorted(t for t, v in run.tasks.items() if not v.deleted)
    existing = bool(live) and rng.random() < 0.5
    task_id = rng.choice(live) if existing else f"t{n}"
    removing = existing and rng.random() < 0.3
    owner = run.tasks[task_id].staff if existing else rng.choice(sorted(run.staff))
    path = f"{base}/tasks/{task_id}"
    async with run.lock(task_id):
        if task_id in run.unsure or (existing and run.tasks[task_id].deleted):
            return
        if removing:
            if taken(await host_call(api, "DELETE", path), task_id, run):
                run.tasks[task_id].deleted = True
                run.writes["task_deleted"] += 1
            return
        wanted = Task(owner, f"task {task_id} r{n}")
        if taken(await host_call(api, "PUT", path, {"staff_id": owner, "title": wanted.title}), task_id, run):
            run.tasks[task_id] = wanted
            run.writes["task_updated" if existing else "task_created"] += 1


async def send_mail(api: httpx.AsyncClient, run: Run, base: str, n: int) -> None:
    message_id = f"m{n}"
    mail: dict[str, Any] = {
        "from_staff_id": run.rng.choice(sorted(run.staff)),
        "to": [{"name": "Chris Customer", "address": "chris@customer.example"}],
        "subject": f"mail {message_id}",
        "body": {"content_type": "text", "content": "See you soon."},
    }
    if taken(await host_call(api, "PUT", f"{base}/mail/{message_id}", mail), message_id, run):
        run.mail.add(message_id)
        run.writes["mail"] += 1


async def host_writes(stack: Stack, run: Run, until: float, rate: float) -> None:
    """Appointments 45 %, tasks 35 %, mail 20 % of the writes, at `rate` a second (Poisson)."""
    rng = run.rng
    base = f"/api/v1/tenants/{run.domain}"
    pending: set[asyncio.Task[None]] = set()
    async with stack.api() as api:
        while time.monotonic() < until:
            roll, n = rng.random(), run.next()
            write = write_appointment if roll < 0.45 else write_task if roll < 0.8 else send_mail
            task = asyncio.ensure_future(write(api, run, base, n))
            pending.add(task)
            task.add_done_callback(pending.discard)
            await asyncio.sleep(rng.expovariate(rate))
        if pending:
            await asyncio.gather(*pending)


class Graph:
    """Graph as a user's Outlook and To Do change the mailbox (the connector app's token, immutable ids)."""

    def __init__(self, stack: Stack, tenant_id: str) -> None:
        self.stack = stack
        self.tenant_id = tenant_id
        self.trust = ssl.create_default_context(cafile=stack.ready["ca_file"])
        self.http = httpx.AsyncClient(
            base_url=stack.ready["graph"],
            verify=self.trust,
            headers={"Prefer": 'IdType="ImmutableId", outlook.timezone="UTC"'},
            timeout=CLIENT_TIMEOUT_S + 15,
        )

    async def sign_in(self) -> None:
        async with httpx.AsyncClient(verify=self.trust) as http:
            token = (
                await http.post(
                    f"{self.stack.ready['authority']}/{self.tenant_id}/oauth2/v2.0/token",
                    data={
                        "client_id": self.stack.client_id,
                        "client_secret": self.stack.client_secret,
                        "scope": "https://graph.microsoft.com/.default",
                        "grant_type": "client_credentials",
                    },
                )
            ).json()["access_token"]
        self.http.headers["Authorization"] = f"Bearer {token}"

    async def call(self, method: str, path: str, body: Any = None) -> httpx.Response | None:
        """Once: Outlook's own retries are not the point, and whatever happened is read back at the end."""
        try:
            return await self.http.request(method, path, json=body)
        except httpx.HTTPError:
            return None

    async def every(self, path: str, **params: str) -> list[dict[str, Any]]:
        """Every page, retried on the faults the run may have left (none are left when it reads)."""
        found: list[dict[str, Any]] = []
        url: str | None = path
        query: dict[str, str] | None = {"$top": "500", **params}
        while url:
            answer = await self.http.get(url, params=query)
            if answer.status_code in (429, 503, 504):
                await asyncio.sleep(1)
                continue
            answer.raise_for_status()
            body = answer.json()
            found += body["value"]
            url, query = body.get("@odata.nextLink"), None
        return found


async def outlook_changes(graph: Graph, run: Run, until: float, rate: float) -> None:
    rng = run.rng
    users = sorted(run.staff.values())
    pending: set[asyncio.Task[None]] = set()

    async def one() -> None:
        user = rng.choice(users)
        n = run.next()
        roll = rng.random()
        if roll < 0.65:
            made = run.outlook_events.setdefault(user, [])
            days, hour = rng.randint(1, 20), rng.randint(6, 19)
            body = {"subject": f"outlook {n}", "start": {"dateTime": wall(days, hour), "timeZone": "UTC"}}
            body["end"] = {"dateTime": wall(days, hour + 1), "timeZone": "UTC"}
            if not made or rng.random() < 0.4:
                answer = await graph.call("POST", f"/users/{user}/events", body)
                if answer is not None and answer.status_code == 201:
                    made.append(answer.json()["id"])
                    run.outlook["event_created"] += 1
            elif rng.random() < 0.7:
                answer = await graph.call("PATCH", f"/users/{user}/events/{rng.choice(made)}", body)
                run.outlook["event_updated"] += answer is not None and answer.status_code == 200
            else:
                event_id = made.pop(rng.randrange(len(made)))
                answer = await graph.call("DELETE", f"/users/{user}/events/{event_id}")
                run.outlook["event_deleted"] += answer is not None and answer.status_code == 204
        else:
            list_id = run.list_ids.get(user)
            if list_id is None:
                return
            made = run.outlook_tasks.setdefault(user, [])
            tasks = f"/users/{user}/todo/lists/{list_id}/tasks"
            if not made or rng.random() < 0.4:
                answer = await graph.call("POST", tasks, {"title": f"todo {n}"})
                if answer is not None and answer.status_code == 201:
                    made.append(answer.json()["id"])
                    run.outlook["task_created"] += 1
            elif rng.random() < 0.7:
                answer = await graph.call("PATCH", f"{tasks}/{rng.choice(made)}", {"title": f"todo {n}"})
                run.outlook["task_updated"] += answer is not None and answer.status_code == 200
            else:
                task_id = made.pop(rng.randrange(len(made)))
                answer = await graph.call("DELETE", f"{tasks}/{task_id}")
                run.outlook["task_deleted"] += answer is not None and answer.status_code == 204

    while time.monotonic() < until:
        task = asyncio.ensure_future(one())
        pending.add(task)
        task.add_done_callback(pending.discard)
        await asyncio.sleep(rng.expovariate(rate))
    if pending:
        await asyncio.gather(*pending)


# --- faults -------------------------------------------------------------------------------------------------


async def inject(stack: Stack, run: Run, kind: str) -> None:
    rng = run.rng
    users = sorted(run.staff.values())
    mailboxes = r"^/v1\.0/users/"
    async with stack.control() as control:
        if kind == "throttled_429":  # a spell of throttling: a share of requests for a few seconds
            rule = await control.add_fault(
                status=429,
                retry_after=rng.randint(1, 3),
                rate=rng.uniform(0.2, 0.6),
                seed=rng.randrange(2**31),
                path=mailboxes,
            )
            await asyncio.sleep(rng.uniform(3, 10))
            with contextlib.suppress(Exception):  # the run may have cleared every fault meanwhile
                await control.remove_fault(str(rule["id"]))
        elif kind == "unavailable_503":
            when = rng.choice(("before", "after"))
            await control.add_fault(status=503, count=rng.randint(1, 4), path=mailboxes, when=when)
        elif kind == "slow_past_timeout":
            await control.add_fault(
                status=504, delay_ms=(CLIENT_TIMEOUT_S + 2) * 1000, when="after", count=1, path=mailboxes
            )
        elif kind.startswith("notifications_"):
            action = {"dropped": "drop", "duplicated": "duplicate", "reordered": "reorder"}[
                kind.split("_")[1]
            ]
            count = rng.randint(2, 4) if action == "reorder" else rng.randint(1, 3)
            await control.add_notification_rule(action, count=count, kind="change")
        elif kind == "delta_token_expired":
            await control.expire_delta_tokens(tenant_id=run.tenant_id, user=rng.choice(users))
        elif kind.startswith("subscription_removed"):
            mine = [s for s in await control.subscriptions() if s.get("tenantId") == run.tenant_id]
            if not mine:
                return
            chosen = rng.choice(sorted(mine, key=lambda s: str(s["id"])))
            await control.remove_subscription(str(chosen["id"]), lifecycle=kind.endswith("told"))
        elif kind == "worker_killed":  # a queue worker, one with a job running when there is one
            stack.log.poll()
            workers = sorted(
                ((p, p.cmdline()[-1]) for p in stack.workers() if p.cmdline()[-1] in JOB_FUNCTIONS),
                key=lambda found: found[0].pid,
            )
            busy = [p for p, name in workers if stack.log.in_flight(name) > 0]
            victims = busy or [p for p, _ in workers]
            if not victims:
                return
            with contextlib.suppress(psutil.Error):
                rng.choice(victims).send_signal(signal.SIGKILL)
            run.faults["worker_killed_mid_job"] += bool(busy)
        elif kind == "azurite_restarted":
            await asyncio.to_thread(stack.azurite.restart, rng.uniform(1, 4))
    run.faults[kind] += 1


async def faults(stack: Stack, run: Run, until: float, every: float, kinds: tuple[str, ...]) -> None:
    rng = run.rng
    while True:
        await asyncio.sleep(rng.expovariate(1 / every))
        if time.monotonic() >= until:
            return
        kind = rng.choice(kinds)
        say(f"fault: {kind}")
        try:
            await inject(stack, run, kind)
        except Exception as error:
            say(f"fault {kind} not injected: {error!r}")


async def quiet(stack: Stack, limit: float) -> bool:
    """No job queued and no invocation started or finished, three looks in a row a second apart (delayed
    messages do not count; nor does an invocation a killed worker never finished)."""
    deadline = time.monotonic() + limit
    calm = 0
    seen = -1
    while time.monotonic() < deadline:
        stack.log.poll()
        moves = sum(stack.log.started.values()) + sum(stack.log.ended.values())
        waiting = await asyncio.gather(*(asyncio.to_thread(stack.visible_messages, q) for q in QUEUES))
        calm = 0 if any(waiting) or moves != seen else calm + 1
        seen = moves
        if calm >= 3:
            return True
        await asyncio.sleep(1)
    return False


# --- the check ----------------------------------------------------------------------------------------------


@dataclass
class Verdict:
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    unconverged: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.unconverged)


async def feed(stack: Stack, run: Run) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor = 0
    async with stack.api() as api:
        while True:
            answer = await api.get(
                f"/api/v1/tenants/{run.domain}/changes", params={"cursor": cursor, "limit": 1000}
            )
            answer.raise_for_status()
            body = answer.json()
            found += body["value"]
            if not body["value"]:
                return found
            cursor = int(body["cursor"])


def same(change: dict[str, Any], kind: str) -> dict[str, Any]:
    """What a change says of the item (its subject/title and times), to compare with the next one."""
    item = change["data"][kind]
    keys = ("subject", "start", "end") if kind == "event" else ("title", "status")
    return {k: item.get(k) for k in keys}


def check_outlook_items(
    verdict: Verdict, changes: list[dict[str, Any]], held: dict[str, dict[str, Any]], kind: str, label: str
) -> None:
    """Each item Outlook holds announced created once, its last change equal; each one gone, deleted last;
    no change twice in a row."""
    by_id: dict[str, list[dict[str, Any]]] = {}
    for change in changes:
        if (
            change["type"].startswith(f"{kind}.")
            and change["data"].get(f"{kind}_id" if kind == "task" else "appointment_id") is None
        ):
            by_id.setdefault(change["data"][kind]["id"], []).append(change)
    for item_id, item in held.items():
        said = by_id.get(item_id, [])
        created = [c for c in said if c["type"] == f"{kind}.created"]
        if not said or said[-1]["type"] == f"{kind}.deleted":
            verdict.lost.append(
                f"{label} {item_id} ({item.get('subject') or item.get('title')}): not on the feed"
            )
            continue
        if len(created) != 1:
            verdict.duplicated.append(f"{label} {item_id}: created {len(created)} times on the feed")
        last = said[-1]["data"][kind]
        wanted = item.get("subject") if kind == "event" else item.get("title")
        if (last.get("subject") if kind == "event" else last.get("title")) != wanted:
            verdict.lost.append(
                f"{label} {item_id}: the feed's last change says {same(said[-1], kind)}, Outlook {wanted!r}"
            )
    for item_id, said in by_id.items():
        if item_id not in held and said[-1]["type"] != f"{kind}.deleted":
            verdict.lost.append(f"{label} {item_id}: deleted in Outlook, not on the feed")
        for before, after in itertools.pairwise(said):
            if before["type"] == after["type"] and (
                after["type"].endswith("deleted") or same(before, kind) == same(after, kind)
            ):
                verdict.duplicated.append(
                    f"{label} {item_id}: {after['type']} twice in a row (#{after['sequence']})"
                )


async def host_view(stack: Stack, run: Run, appointment_id: str) -> str:
    """What the host API says of an appointment: its state and its copies', for a finding's line."""
    async with stack.api() as api:
        answer = await api.get(f"/api/v1/tenants/{run.domain}/appointments/{appointment_id}")
    if answer.status_code != 200:
        return f"the API answers {answer.status_code}"
    body = answer.json()
    copies = ", ".join(f"{c.get('staff_id')}: {c.get('state')}" for c in body.get("staff") or ())
    return f"the API: revision {body.get('revision')}, {body.get('state')}; {copies}"


def signed_when_received(receiver: HostReceiver, delivery: ReceivedDelivery) -> bool:
    """The signature checked as the host checks it, on receipt (its timestamp is only minutes good)."""
    header = delivery.headers.get(SIGNATURE_HEADER.lower(), "")
    received = int(time.time() - (time.monotonic() - delivery.received_at))
    return delivery_signature_valid(receiver.secret, header, delivery.body, received)


async def check(stack: Stack, run: Run, graph: Graph) -> Verdict:
    verdict = Verdict()
    changes = await feed(stack, run)
    # host appointments: one event per staff member, with the subject and times; none elsewhere
    calendars = {upn: await graph.every(f"/users/{upn}/events") for upn in run.staff.values()}
    for appointment_id, wanted in run.appointments.items():
        if appointment_id in run.unsure:
            continue
        for staff_id, upn in run.staff.items():
            found = [e for e in calendars[upn] if e["subject"].startswith(f"appt {appointment_id} ")]
            expected = 1 if not wanted.deleted and staff_id in wanted.staff else 0
            if len(found) > expected:
                verdict.duplicated.append(
                    f"appointment {appointment_id}: {len(found)} events in {upn}'s calendar,"
                    f" {expected} expected"
                    f" ({await host_view(stack, run, appointment_id)})"
                )
            elif len(found) < expected:
                verdict.lost.append(
                    f"appointment {appointment_id}: no event in {upn}'s calendar"
                    f" ({await host_view(stack, run, appointment_id)})"
                )
            elif found and (
                found[0]["subject"] != wanted.subject
                or found[0]["start"]["dateTime"][:19] != wall(wanted.days, wanted.hour)
            ):
                verdict.unconverged.append(
                    f"appointment {appointment_id} in {upn}'s calendar: {found[0]['subject']!r} at"
                    f" {found[0]['start']['dateTime']}, the host's {wanted.subject!r}"
                    f" at {wall(wanted.days, wanted.hour)}"
                )
    # host tasks: one linked To Do task with the title; none when deleted
    lists = {}
    for upn in run.staff.values():
        list_id = run.list_ids.get(upn)
        lists[upn] = (
            await graph.every(f"/users/{upn}/todo/lists/{list_id}/tasks", **{"$expand": "linkedResources"})
            if list_id
            else []
        )
    for task_id, wanted_task in run.tasks.items():
        if task_id in run.unsure:
            continue
        for staff_id, upn in run.staff.items():
            found = [
                t
                for t in lists[upn]
                if any(
                    r.get("externalId") == task_id and r.get("applicationName") == TASK_LINK_APPLICATION
                    for r in t.get("linkedResources") or ()
                )
            ]
            expected = 1 if not wanted_task.deleted and staff_id == wanted_task.staff else 0
            if len(found) > expected:
                verdict.duplicated.append(f"task {task_id}: {len(found)} To Do tasks for {upn}")
            elif len(found) < expected:
                verdict.lost.append(f"task {task_id}: not in {upn}'s To Do list")
            elif found and found[0]["title"] != wanted_task.title:
                verdict.unconverged.append(
                    f"task {task_id}: To Do says {found[0]['title']!r}, the host {wanted_task.title!r}"
                )
    # mail: delivered once each, reported sent
    async with stack.control() as control:
        deliveries = await control.mail_deliveries()
    sent = Counter((d.get("extended_properties") or {}).get(MAIL_PROPERTY_ID) for d in deliveries)
    for message_id in run.mail - run.unsure:
        if sent[message_id] == 0:
            verdict.lost.append(f"mail {message_id}: never delivered")
        elif sent[message_id] > 1:
            verdict.duplicated.append(f"mail {message_id}: delivered {sent[message_id]} times")
    # Outlook-made events and tasks against the feed; the connector's own writes never echoed
    held_events = {
        e["id"]: e
        for upn in run.staff.values()
        for e in calendars[upn]
        if e["subject"].startswith("outlook ")
    }
    check_outlook_items(verdict, changes, held_events, "event", "Outlook event")
    held_tasks = {
        t["id"]: t for upn in run.staff.values() for t in lists[upn] if t["title"].startswith("todo ")
    }
    check_outlook_items(verdict, changes, held_tasks, "task", "To Do task")
    for change in changes:
        if change["type"].startswith("event.") and str(change["data"]["event"].get("subject", "")).startswith(
            "appt "
        ):
            verdict.duplicated.append(f"the connector's own event echoed on the feed (#{change['sequence']})")
    # the webhook: every change on the feed delivered; more than once only as the same delivery (the host
    # deduplicates on X-Connector-Delivery, README "Changes")
    deliveries_of: dict[int, set[str]] = {}
    posts: Counter[int] = Counter()
    with stack.receiver.lock:
        received = list(stack.receiver.deliveries)
    for delivery in received:
        body = delivery.json()
        if not signed_when_received(stack.receiver, delivery) or body["tenant_id"] != run.domain:
            continue
        for change in body["changes"]:
            deliveries_of.setdefault(int(change["sequence"]), set()).add(
                delivery.headers.get(DELIVERY_HEADER, "")
            )
            posts[int(change["sequence"])] += 1
    run.redelivered = sum(times - 1 for times in posts.values())
    for change in changes:
        ids = deliveries_of.get(int(change["sequence"]), set())
        if not ids:
            verdict.lost.append(f"change #{change['sequence']} ({change['type']}) never reached the webhook")
        elif len(ids) > 1:
            verdict.duplicated.append(
                f"change #{change['sequence']} reached the webhook in {len(ids)} deliveries"
            )
    # every staff member synced
    async with stack.api() as api:
        users = (await api.get(f"/api/v1/tenants/{run.domain}/users")).json()["value"]
    for user in users:
        if user["state"] != "synced":
            verdict.unconverged.append(f"staff {user['staff_id']}: {user['state']}")
    return verdict


# --- the run ------------------------------------------------------------------------------------------------


async def connect(stack: Stack, run: Run, users: int) -> None:
    """An organisation of `users` staff members (mail on), consented, matched and migrated."""
    domain = f"chaos{run.rng.randrange(16**8):08x}.example"
    async with stack.control() as control:
        tenant = await control.create_tenant(f"Chaos {domain}", [domain], consent_policy="auto-accept")
        run.domain, run.tenant_id = domain, str(tenant["id"])
        for index in range(users):
            upn = f"staff{index}@{domain}"
            await control.create_user(run.tenant_id, upn, display_name=f"Staff {index}")
            run.staff[f"s-{index}"] = upn
    trust = ssl.create_default_context(cafile=stack.ready["ca_file"])
    async with stack.api() as api:
        created = await api.post(
            "/api/v1/tenants",
            json={"tenant_id": domain, "display_name": "Chaos", "auth": {"mode": "admin_consent"}},
        )
        created.raise_for_status()
        async with httpx.AsyncClient(verify=trust, follow_redirects=True, timeout=60) as browser:
            (await browser.get(created.json()["consent_url"])).raise_for_status()
        for staff_id, upn in run.staff.items():
            body = {"upn": upn, "switches": {"mail": True}}
            (await api.put(f"/api/v1/tenants/{domain}/staff/{staff_id}", json=body)).raise_for_status()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            states = [u["state"] for u in (await api.get(f"/api/v1/tenants/{domain}/users")).json()["value"]]
            if len(states) == users and all(s == "synced" for s in states):
                return
            await asyncio.sleep(1)
    raise TimeoutError("the organisation did not migrate within 300 s")


async def find_lists(graph: Graph, run: Run) -> None:
    for upn in run.staff.values():
        for todo_list in await graph.every(f"/users/{upn}/todo/lists"):
            if todo_list["displayName"] == TASK_LIST:
                run.list_ids[upn] = todo_list["id"]


async def settle(stack: Stack, run: Run, graph: Graph, limit: float) -> tuple[Verdict, float | None]:
    """Quiet, the renewal timer once, then the check until it passes or `limit` seconds passed."""
    started = time.monotonic()

    def left() -> float:
        return max(1.0, limit - (time.monotonic() - started))

    await quiet(stack, left())
    stack_run_function(stack, "renew_subscriptions")
    while True:
        await quiet(stack, left())
        verdict = await check(stack, run, graph)
        if verdict.ok:
            return verdict, time.monotonic() - started
        if time.monotonic() - started >= limit:
            return verdict, None
        say(
            f"not yet: {len(verdict.lost)} lost, {len(verdict.duplicated)} duplicated,"
            f" {len(verdict.unconverged)} not converged"
        )
        await asyncio.sleep(5)


def stack_run_function(stack: Stack, name: str) -> None:
    with httpx.Client(base_url=stack.host.url, headers={"x-functions-key": stack.host.master_key}) as client:
        client.post(f"/admin/functions/{name}", json={"input": ""}).raise_for_status()


def show(verdict: Verdict, limit: int = 15) -> None:
    for title, found in (
        ("lost", verdict.lost),
        ("duplicated", verdict.duplicated),
        ("not converged", verdict.unconverged),
    ):
        for line in found[:limit]:
            say(f"  {title}: {line}")
        if len(found) > limit:
            say(f"  {title}: ... and {len(found) - limit} more")


async def chaos(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    run = Run(random.Random(args.seed))
    await connect(stack, run, args.users)
    graph = Graph(stack, run.tenant_id)
    await graph.sign_in()
    await find_lists(graph, run)
    async with stack.control() as control:
        before = await control.stats()
    say(f"organisation {run.domain}: {args.users} staff members migrated; chaos for {args.minutes:g} min")
    started = time.monotonic()
    until = started + args.minutes * 60
    await asyncio.gather(
        host_writes(stack, run, until, args.rate),
        outlook_changes(graph, run, until, args.rate / 2),
        faults(stack, run, until, args.fault_every, args.faults),
    )
    chaos_s = time.monotonic() - started
    async with stack.control() as control:
        await control.clear_faults()
        await control.clear_notification_rules()
        after = await control.stats()
    say("faults stopped; waiting for quiet and checking")
    limit = max(args.settle, SETTLE_AT_LEAST_S)
    verdict, converged_s = await settle(stack, run, graph, limit)
    figures: dict[str, Any] = {
        "seed": args.seed,
        "minutes": round(chaos_s / 60, 2),
        "users": args.users,
        "host_writes": dict(run.writes),
        "host_writes_never_taken": len(run.unsure),
        "outlook_changes": dict(run.outlook),
        "faults_chosen": dict(run.faults),
        "graph_faults_answered": after.get("faults_injected", 0) - before.get("faults_injected", 0),
        "notifications": {
            kind: after["notifications"].get(kind, 0) - before["notifications"].get(kind, 0)
            for kind in ("sent", "dropped", "duplicated", "reordered")
        },
        "converged_after_s": None if converged_s is None else round(converged_s, 1),
        "needed_admin_resync": False,
    }
    if converged_s is None:
        say(f"not converged within {limit:.0f} s of the faults stopping:")
        show(verdict)
        figures["before_resync"] = {
            "lost": len(verdict.lost),
            "duplicated": len(verdict.duplicated),
            "not_converged": len(verdict.unconverged),
        }
        say("asking for the tenant's resync, as an admin would")
        async with stack.api() as api:
            (await api.post(f"/api/v1/tenants/{run.domain}/resync", json={})).raise_for_status()
        figures["needed_admin_resync"] = True
        verdict, resynced_s = await settle(stack, run, graph, limit)
        figures["converged_after_resync_s"] = None if resynced_s is None else round(resynced_s, 1)
    figures.update(
        lost=len(verdict.lost), duplicated=len(verdict.duplicated), not_converged=len(verdict.unconverged)
    )
    if not verdict.ok:
        show(verdict)
    await graph.http.aclose()
    return figures


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.chaos", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--seed", type=int, default=None, help="the run's seed (default: a new one, printed)")
    parser.add_argument("--minutes", type=float, default=10, help="minutes of writes and faults (10)")
    parser.add_argument("--users", type=int, default=4, help="staff members (4)")
    parser.add_argument(
        "--rate", type=float, default=2, help="host writes per second; Outlook changes at half (2)"
    )
    parser.add_argument("--fault-every", type=float, default=8, help="mean seconds between faults (8)")
    parser.add_argument(
        "--settle",
        type=float,
        default=240,
        help="seconds to converge after the faults (240; at least 180, the follow-up catch-up's wait)",
    )
    parser.add_argument(
        "--faults",
        default=",".join(FAULT_KINDS),
        help="the kinds of fault to choose from, comma-separated (default: all): " + ", ".join(FAULT_KINDS),
    )
    parser.add_argument("--json", default="", help="also write the figures to this file")
    args = parser.parse_args(argv)
    args.faults = tuple(kind for kind in str(args.faults).split(",") if kind)
    unknown = sorted(set(args.faults) - set(FAULT_KINDS))
    if unknown or not args.faults:
        parser.error(f"--faults: unknown kinds {unknown}" if unknown else "--faults: name at least one kind")
    if args.seed is None:
        args.seed = secrets.randbelow(10**9)
    return args


def interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, interrupt)
    replay = f"--seed {args.seed} --minutes {args.minutes:g} --users {args.users} --rate {args.rate:g}"
    if args.faults != FAULT_KINDS:
        replay += f" --faults {','.join(args.faults)}"
    say(f"chaos run, seed {args.seed} (replay: {replay})")
    workdir = Path(tempfile.mkdtemp(prefix="chaos-"))
    try:
        with running_stack(workdir) as stack:
            figures = asyncio.run(chaos(stack, args))
    except KeyboardInterrupt:
        print("\ninterrupted; every process is stopped", file=sys.stderr)
        return 130
    if args.json:  # with what `benchmarks.publish` shows beside them
        extra = f"--fault-every {args.fault_every:g} --settle {args.settle:g}"
        command = f"python -m benchmarks.chaos {replay} {extra}"
        document = {
            **figures,
            "command": command,
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine(),
        }
        Path(args.json).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    ok = figures["lost"] == 0 and figures["duplicated"] == 0 and figures["not_converged"] == 0
    print(f"figures: {json.dumps(figures)}", flush=True)
    say(("CONVERGED" if ok else "FAILED") + f" (seed {args.seed})")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
