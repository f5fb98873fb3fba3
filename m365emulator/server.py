"""The HTTP side: one aiohttp application for Entra, Graph and the control surface on the main
port, and the Key Vault application at the root of a second port, both over TLS."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from m365emulator import (
    availability,
    batch,
    consent,
    control_api,
    entra,
    mail,
    mailbox_settings,
    mailboxes,
    meetings,
    subscriptions,
    todo,
    users,
)
from m365emulator.core import Emulator
from m365emulator.graph import EMULATOR, pipeline
from m365emulator.keyvault import build_app as build_vault_app
from m365emulator.tls import server_context

PUBLIC_HOST = "localhost"


def build_app(emu: Emulator) -> web.Application:
    app = web.Application(middlewares=[pipeline], client_max_size=8 * 1024 * 1024)
    app[EMULATOR] = emu
    control_api.add_routes(app)
    batch.add_routes(app)
    subscriptions.add_routes(app)
    users.add_routes(app)
    mailbox_settings.add_routes(app)
    availability.add_routes(app)
    todo.add_routes(app)
    mail.add_routes(app)
    meetings.add_routes(app)
    mailboxes.add_routes(app, emu.mailboxes)
    entra.add_routes(app)
    consent.add_routes(app)
    return app


@dataclass
class Running:
    emulator: Emulator
    runners: list[web.AppRunner]
    port: int
    kv_port: int
    ca_file: Path

    def ready_line(self) -> dict[str, Any]:
        emu = self.emulator
        line: dict[str, Any] = {
            "authority": emu.authority,
            "graph": emu.graph_url,
            "keyvault": emu.keyvault_url,
            "control": emu.control_url,
            "ca_file": str(self.ca_file),
        }
        for key in (
            "tenant_id",
            "client_id",
            "client_secret",
            "platform_tenant_id",
            "platform_client_id",
            "platform_client_secret",
            "bulk_tenant_id",
        ):
            if key in emu.seed_info:
                line[key] = emu.seed_info[key]
        if emu.clock.path is not None:
            line["clock_file"] = str(emu.clock.path)
        return line

    async def stop(self) -> None:
        for runner in self.runners:
            await runner.cleanup()
        await self.emulator.close()


async def _site(runner: web.AppRunner, host: str, port: int, ssl_context: Any) -> int:
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context, backlog=1024)
    await site.start()
    server = site._server
    sockets = getattr(server, "sockets", None) or []
    return int(sockets[0].getsockname()[1]) if sockets else port


async def serve(
    emu: Emulator, *, host: str = "127.0.0.1", port: int = 8443, ca_file: Path | None = None
) -> Running:
    """Start both listeners; port 0 picks free ports. Returns once they accept connections."""
    if ca_file is None:
        ca_file = Path(tempfile.mkdtemp(prefix="m365emulator-")) / "ca.pem"
    context = server_context(ca_file)
    main_runner = web.AppRunner(build_app(emu), access_log=None, handle_signals=False)
    await main_runner.setup()
    bound = await _site(main_runner, host, port, context)
    vault_runner = web.AppRunner(build_vault_app(emu), access_log=None, handle_signals=False)
    await vault_runner.setup()
    kv_bound = await _site(vault_runner, host, port + 1 if port else 0, context)
    emu.set_urls(PUBLIC_HOST, bound, kv_bound)
    await emu.start(str(ca_file))
    return Running(emu, [main_runner, vault_runner], bound, kv_bound, ca_file)
