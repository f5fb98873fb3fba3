"""Mail as Exchange Online answers it through Graph (README "Mail")."""

from __future__ import annotations

from aiohttp import web

from m365emulator.mail import routes, uploads


def add_routes(app: web.Application) -> None:
    routes.add_routes(app)
    uploads.add_routes(app)
