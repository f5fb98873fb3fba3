"""One side of `benchmarks.limiter_bench`: migrates the emulator's bulk tenant with the code of the
checkout it runs in (its `shared` and `tests.fakes` first on PYTHONPATH): the Graph adapters real
(msgraph-sdk against the emulator), storage, queue and subscriptions the in-memory fakes. A migration job
that Graph throttled past the adapter's retries goes back to the fake queue with its delay and runs again
once that has passed, as the sync queue would. Prints one JSON line: wall time, jobs re-queued, users
migrated.

    python benchmarks/limiter_child.py '{"graph": ..., "authority": ..., ...}'
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import replace
from datetime import datetime
from typing import Any

from azure.identity.aio import ClientSecretCredential

from shared.adapters.graph.calendar import GraphCalendar
from shared.adapters.graph.client import GraphClients, TenantKey
from shared.domain.tenants import TenantState
from shared.domain.users import MatchStatus, StaffMember, UserRecord
from shared.service import jobs
from shared.service.job_handlers import run_job
from tests.fakes.services import add_tenant, fake_world

GRAPH_SCOPE = "https://graph.microsoft.com/.default"


async def migrate(args: dict[str, Any]) -> dict[str, Any]:
    async def credential_for(key: TenantKey) -> ClientSecretCredential:
        return ClientSecretCredential(
            key.directory_id,
            key.client_id,
            args["client_secret"],
            authority=args["authority"],
            disable_instance_discovery=True,
            connection_verify=args["ca_file"],
        )

    clients = GraphClients(args["graph"], GRAPH_SCOPE, credential_for, ca_bundle=args["ca_file"])
    key = TenantKey(args["tenant_id"], args["client_id"])

    async def key_for(_: Any) -> TenantKey:
        return key

    world = fake_world()
    world.clock.current = datetime.fromisoformat(args["now"])
    services = replace(world.services, calendar=GraphCalendar(clients, key_for))
    await add_tenant(world, "bulk.example", TenantState.ACTIVE, directory_id=args["tenant_id"])
    now = world.clock.now()
    for n, (graph_id, upn) in enumerate(args["users"]):
        staff = StaffMember(f"s{n}", upn, None, f"User {n}")
        await world.users.save(
            UserRecord("bulk.example", staff, MatchStatus.MATCHED, now, graph_user_id=graph_id)
        )
    queued: list[tuple[float, Any]] = [
        (0.0, jobs.sync_user("bulk.example", f"s{n}", "migration", kind="migrate"))
        for n in range(len(args["users"]))
    ]
    started = time.monotonic()
    requeued = 0
    slots = asyncio.Semaphore(args["concurrency"])  # the sync queue's messages at once in one worker

    async def run(job: Any) -> None:
        async with slots:
            await run_job(services, job)

    while queued:
        due = min(at for at, _ in queued)
        wait = due - (time.monotonic() - started)
        if wait > 0:
            await asyncio.sleep(wait)
        elapsed = time.monotonic() - started
        ready = [job for at, job in queued if at <= elapsed]
        queued = [(at, job) for at, job in queued if at > elapsed]
        await asyncio.gather(*(run(job) for job in ready))
        for job in world.jobs.take():
            if getattr(job, "kind", None) == "migrate":
                requeued += 1
                queued.append((time.monotonic() - started + job.delay_seconds, replace(job, delay_seconds=0)))
    wall = time.monotonic() - started
    users = [await world.users.get("bulk.example", f"s{n}") for n in range(len(args["users"]))]
    await clients.close()
    return {
        "wall_s": round(wall, 2),
        "requeued": requeued,
        "synced": sum(1 for u in users if u is not None and u.sync_state == "synced"),
        "errors": sum(1 for u in users if u is not None and u.last_error),
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(migrate(json.loads(sys.argv[1])))))
