"""Graph `mailboxSettings`: a user's time zone, locale and working hours.

- `GET /users/{id}/mailboxSettings` (with `$select`), `GET …/mailboxSettings/workingHours` and
  `…/mailboxSettings/timeZone` (`api/user-get-mailboxsettings.md` lists the per-setting paths).
  Reading takes MailboxSettings.Read(Write); the emulator also lets Calendars.ReadWrite and
  User.Read.All read them (the connector reads a mailbox's zone with those) [lenient].
- `PATCH /users/{id}/mailboxSettings` (`api/user-update-mailboxsettings.md`): application permission
  MailboxSettings.ReadWrite only (else 403 `ErrorAccessDenied`); `timeZone` and `workingHours` (a
  partial `workingHours` keeps what it leaves out, as example 2 of that page shows); answers 200
  with the updated properties only. The page's other writable settings (automatic replies, date and
  time formats, language, delegate options) are not emulated: 400 naming the property.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from m365emulator.calendar.timezones import find_zone
from m365emulator.directory import User
from m365emulator.errors import GraphError
from m365emulator.graph import emulator_of, json_body, mailbox_user, respond
from m365emulator.odata import select_fields
from m365emulator.working_hours import invalid_time_zone, patched

READ_ROLES = (
    "MailboxSettings.Read",
    "MailboxSettings.ReadWrite",
    "Calendars.ReadWrite",
    "User.Read.All",
)
WRITE_ROLES = ("MailboxSettings.ReadWrite",)
NOT_EMULATED = {
    "automaticrepliessetting",
    "dateformat",
    "timeformat",
    "language",
    "delegatemeetingmessagedeliveryoptions",
    "userpurpose",
    "archivefolder",
}


def settings_json(user: User) -> dict[str, Any]:
    return {
        "timeZone": user.time_zone,
        "language": {"locale": user.preferred_language or "en-US", "displayName": "English (United States)"},
        "workingHours": user.working_hours.graph_json(),
        "userPurpose": "user",
    }


def _context(request: web.Request, user: User, suffix: str = "") -> str:
    return f"{emulator_of(request).graph_url}/$metadata#users('{user.id}')/mailboxSettings{suffix}"


async def get_mailbox_settings(request: web.Request) -> web.Response:
    user = mailbox_user(request, request.match_info["user"], READ_ROLES)
    settings = settings_json(user)
    fields = select_fields(dict(request.query))
    if fields:
        lowered = {k.lower(): k for k in settings}
        chosen: dict[str, Any] = {}
        for name in fields:
            key = lowered.get(name.lower())
            if key is None:
                raise GraphError(
                    400,
                    "RequestBroker--ParseUri",
                    f"Could not find a property named '{name}' on type 'microsoft.graph.mailboxSettings'.",
                )
            chosen[key] = settings[key]
        settings = chosen
    return respond({"@odata.context": _context(request, user), **settings})


async def get_working_hours(request: web.Request) -> web.Response:
    user = mailbox_user(request, request.match_info["user"], READ_ROLES)
    body = {"@odata.context": _context(request, user, "/workingHours")}
    body.update(user.working_hours.graph_json())
    return respond(body)


async def get_time_zone(request: web.Request) -> web.Response:
    user = mailbox_user(request, request.match_info["user"], READ_ROLES)
    return respond({"@odata.context": _context(request, user, "/timeZone"), "value": user.time_zone})


async def patch_mailbox_settings(request: web.Request) -> web.Response:
    user = mailbox_user(request, request.match_info["user"], WRITE_ROLES)
    body = await json_body(request)
    changes = {k: v for k, v in body.items() if not k.startswith("@odata.")}
    for name in changes:
        if name.lower() in NOT_EMULATED:
            raise GraphError(400, "ErrorInvalidRequest", f"The emulator does not change '{name}'.")
        if name not in ("timeZone", "workingHours"):
            raise GraphError(
                400,
                "RequestBodyRead",
                f"The property '{name}' does not exist on type 'microsoft.graph.mailboxSettings'. Make "
                "sure to only use property names that are defined by the type.",
            )
    time_zone = user.time_zone
    if "timeZone" in changes:
        raw = changes["timeZone"]
        if not isinstance(raw, str) or find_zone(raw) is None:
            raise invalid_time_zone()
        time_zone = raw
    hours = user.working_hours_set
    if "workingHours" in changes:
        hours = patched(user.working_hours, changes["workingHours"], lambda name: find_zone(name) is not None)
    # Validated in full before anything changes: a bad workingHours leaves the time zone alone too.
    user.time_zone = time_zone
    user.working_hours_set = hours
    answer: dict[str, Any] = {"@odata.context": _context(request, user)}
    if "timeZone" in changes:
        answer["timeZone"] = user.time_zone
    if "workingHours" in changes:
        answer["workingHours"] = user.working_hours.graph_json()
    return respond(answer)


def add_routes(app: web.Application) -> None:
    base = "/v1.0/users/{user}/mailboxSettings"
    app.router.add_get(base, get_mailbox_settings)
    app.router.add_patch(base, patch_mailbox_settings)
    app.router.add_get(base + "/workingHours", get_working_hours)
    app.router.add_get(base + "/timeZone", get_time_zone)
