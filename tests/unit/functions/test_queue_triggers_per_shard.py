"""The queue triggers are registered from the settings: once for the home account and once per storage
shard, each listening with the shard's connection. The worker indexes `function_app` in a fresh process
with the app settings in its environment, so the test does too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
LIST_TRIGGERS = """
import json, function_app
print(json.dumps(sorted(
    [f.get_function_name(), b.queue_name, b.connection]
    for f in function_app.app.get_functions()
    for b in f.get_bindings()
    if b.type == "queueTrigger"
)))
"""


def queue_triggers(**settings: str) -> list[list[str]]:
    env = {k: v for k, v in os.environ.items() if k != "STORAGE_SHARDS"} | settings
    done = subprocess.run(
        [sys.executable, "-c", LIST_TRIGGERS],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


def test_each_queue_is_served_in_the_home_account_and_in_every_shard() -> None:
    queues = ["host-deliveries", "outlook-writes", "sync-jobs", "tenant-jobs"]
    home = queue_triggers()
    assert sorted(q for _, q, _ in home) == queues
    assert {c for _, _, c in home} == {"AzureWebJobsStorage"}
    sharded = queue_triggers(STORAGE_SHARDS="SHARD1,SHARD2")
    assert sorted(sharded) == sorted(
        home
        + [[f"{name}__{shard}", queue, shard] for name, queue, _ in home for shard in ("SHARD1", "SHARD2")]
    )
