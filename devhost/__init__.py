"""A local Azure Functions host for development and tests (never deployed).

It imports `function_app.py` and indexes it the way the Python worker does, serves the HTTP triggers
with auth levels and keys, runs the timers on their NCRONTAB schedules and the queue triggers against
Azurite with `host.json` semantics. See README.md in this folder for what it is and what it is not.

Public surface:
- `devhost.host.LocalHost`: the host, in-process (`await start()` / `await stop()`).
- `devhost.launcher.HostProcess`: the host as a subprocess (`python -m devhost`), with its ready line.
- `devhost.azurite.Azurite`: Azurite from `node_modules`, on free loopback ports.
"""
