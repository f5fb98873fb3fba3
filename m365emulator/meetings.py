"""Standalone Teams meetings (contract §7): `POST /users/{id}/onlineMeetings` and `createOrGet`
(idempotent on externalId per app and organiser), `GET` one or the list filtered by `JoinWebUrl`, `PATCH`
(times, subject) and `DELETE`; every call 403 "No application access policy found for this app." unless
the tenant has an application access policy covering the app and the user (per user, or global; the
control API grants and revokes them)."""

from __future__ import annotations

import base64
import random
import re
import uuid
from datetime import timedelta
from typing import Any, Final
from urllib.parse import quote, unquote

from aiohttp import web

from m365emulator.directory import User
from m365emulator.errors import GraphError
from m365emulator.graph import claims_of, emulator_of, json_body, param, require_role, respond
from m365emulator.odata import graph_datetime, parse_datetime

ROLES = ("OnlineMeetings.ReadWrite.All", "OnlineMeetings.Read.All")


def _user(request: web.Request) -> User:
    claims = require_role(
        request, ROLES, GraphError(403, "Forbidden", "Insufficient privileges to complete the operation.")
    )
    emu = emulator_of(request)
    ref = request.match_info["user"]
    user = emu.directory.user(claims.tenant_id, ref)
    if user is None:
        raise GraphError(404, "NotFound", f"The user '{ref}' was not found.")
    if not emu.directory.policy_allows(claims.tenant_id, claims.client_id, user.id):
        raise GraphError(403, "General", "No application access policy found for this app.")
    return user


def _check_times(body: dict[str, Any]) -> None:
    """createOrGet refuses an end without a start, or an end earlier than the start (contract §7: "An
    error is thrown if the endDateTime is provided without the startDateTime or if the endDateTime is
    earlier than the startDateTime", onlinemeeting-createorget)."""
    start, end = param(body, "startDateTime"), param(body, "endDateTime")
    if end and not start:
        raise GraphError(400, "BadRequest", "startDateTime is required when endDateTime is provided.")
    if start and end:
        try:
            earlier = parse_datetime(end) < parse_datetime(start)
        except (ValueError, TypeError) as exc:
            raise GraphError(400, "BadRequest", "Invalid startDateTime or endDateTime.") from exc
        if earlier:
            raise GraphError(400, "BadRequest", "endDateTime cannot be earlier than startDateTime.")


def _meeting(request: web.Request, user: User, body: dict[str, Any]) -> dict[str, Any]:
    emu = emulator_of(request)
    now = emu.clock.now()
    try:
        start = parse_datetime(param(body, "startDateTime")) if param(body, "startDateTime") else now
        end = (
            parse_datetime(param(body, "endDateTime"))
            if param(body, "endDateTime")
            else start + timedelta(hours=1)
        )
    except (ValueError, TypeError) as exc:
        raise GraphError(400, "BadRequest", "Invalid startDateTime or endDateTime.") from exc
    if end <= start:
        end = start + timedelta(hours=1)
    participants = param(body, "participants")
    if not isinstance(participants, dict):
        participants = {}
    thread = f"19:meeting_{base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip('=')}@thread.v2"
    context = quote(f'{{"Tid":"{user.tenant_id}","Oid":"{user.id}"}}', safe="")
    join = f"https://teams.microsoft.com/l/meetup-join/{quote(thread, safe='')}/0?context={context}"
    meeting_id = base64.urlsafe_b64encode(f"1*{user.id}*0**{thread}".encode()).decode().rstrip("=")
    join_id = str(random.randint(10**11, 10**12 - 1))  # noqa: S311 - not security
    return {
        "@odata.context": f"{emu.graph_url}/$metadata#users('{user.id}')/onlineMeetings/$entity",
        "@odata.type": "#microsoft.graph.onlineMeeting",
        "id": meeting_id,
        "creationDateTime": graph_datetime(now),
        "startDateTime": graph_datetime(start),
        "endDateTime": graph_datetime(end),
        "joinWebUrl": join,
        "joinUrl": join,
        "subject": param(body, "subject"),
        "externalId": param(body, "externalId"),
        "isBroadcast": False,
        "autoAdmittedUsers": "everyoneInCompany",
        "chatInfo": {"threadId": thread, "messageId": "0", "replyChainMessageId": None},
        "participants": {
            "organizer": {
                "identity": {
                    "user": {"id": user.id, "displayName": user.display_name, "tenantId": user.tenant_id}
                },
                "upn": user.upn,
                "role": "presenter",
            },
            "attendees": (participants or {}).get("attendees", []),
        },
        "joinMeetingIdSettings": {
            "isPasscodeRequired": False,
            "joinMeetingId": join_id,
            "passcode": None,
        },
        # The organiser's dial-in (an Audio Conferencing licence: every emulated user has one).
        "audioConferencing": {
            "conferenceId": str(random.randint(10**8, 10**9 - 1)),  # noqa: S311 - not security
            "tollNumber": "+1 425 555 0123",
            "tollFreeNumber": None,
            "dialinUrl": "https://dialin.teams.microsoft.com/local",
        },
    }


async def create_meeting(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    user = _user(request)
    meeting = _meeting(request, user, await json_body(request))
    emu.meetings[(user.id, meeting["id"])] = meeting
    return respond(meeting, 201)


async def create_or_get(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    user = _user(request)
    body = await json_body(request)
    external = param(body, "externalId")
    if not isinstance(external, str) or not external:
        raise GraphError(400, "BadRequest", "externalId is required.")
    _check_times(body)
    key = (claims_of(request).client_id, user.id, external)
    existing = emu.meetings_by_external.get(key)
    if existing is not None:
        return respond(existing, 200)
    meeting = _meeting(request, user, body)
    emu.meetings[(user.id, meeting["id"])] = meeting
    emu.meetings_by_external[key] = meeting
    return respond(meeting, 201)


async def get_meeting(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    user = _user(request)
    meeting = emu.meetings.get((user.id, request.match_info["meeting_id"]))
    if meeting is None:
        raise GraphError(404, "NotFound", "The online meeting was not found.")
    return respond(meeting)


async def list_meetings(request: web.Request) -> web.Response:
    """Only `$filter=JoinWebUrl eq '…'` (the documented way to find a meeting by its join URL): the
    matching meeting, or an empty collection."""
    emu = emulator_of(request)
    user = _user(request)
    condition = request.query.get("$filter", "")
    match = _JOIN_FILTER.fullmatch(condition.strip())
    if match is None:
        raise GraphError(400, "BadRequest", "Filter by JoinWebUrl is required to list online meetings.")
    wanted = match.group(1).replace("''", "'")
    found = [
        m
        for (owner, _), m in emu.meetings.items()
        if owner == user.id and unquote(m["joinWebUrl"]) == unquote(wanted)
    ]
    return respond(
        {"@odata.context": f"{emu.graph_url}/$metadata#users('{user.id}')/onlineMeetings", "value": found}
    )


async def update_meeting(request: web.Request) -> web.Response:
    """PATCH: the times and subject change; the join URL, chat and dial-in stay."""
    emu = emulator_of(request)
    user = _user(request)
    meeting = emu.meetings.get((user.id, request.match_info["meeting_id"]))
    if meeting is None:
        raise GraphError(404, "NotFound", "The online meeting was not found.")
    body = await json_body(request)
    merged = {
        "startDateTime": param(body, "startDateTime") or meeting["startDateTime"],
        "endDateTime": param(body, "endDateTime") or meeting["endDateTime"],
    }
    _check_times(merged)
    meeting["startDateTime"] = graph_datetime(parse_datetime(merged["startDateTime"]))
    meeting["endDateTime"] = graph_datetime(parse_datetime(merged["endDateTime"]))
    if param(body, "subject") is not None:
        meeting["subject"] = param(body, "subject")
    return respond(meeting)


async def delete_meeting(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    user = _user(request)
    meeting = emu.meetings.pop((user.id, request.match_info["meeting_id"]), None)
    if meeting is None:
        raise GraphError(404, "NotFound", "The online meeting was not found.")
    for key, held in list(emu.meetings_by_external.items()):
        if held is meeting:  # a createOrGet with its externalId makes a new meeting now
            del emu.meetings_by_external[key]
    return web.Response(status=204)


_JOIN_FILTER: Final = re.compile(r"(?i)JoinWebUrl\s+eq\s+'((?:[^']|'')*)'")


def add_routes(app: web.Application) -> None:
    base = "/v1.0/users/{user}/onlineMeetings"
    app.router.add_post(base, create_meeting)
    app.router.add_post(base + "/createOrGet", create_or_get)
    app.router.add_post(base + "/microsoft.graph.createOrGet", create_or_get)
    app.router.add_get(base, list_meetings)
    app.router.add_get(base + "/{meeting_id}", get_meeting)
    app.router.add_patch(base + "/{meeting_id}", update_meeting)
    app.router.add_delete(base + "/{meeting_id}", delete_meeting)
