"""Large attachments through an upload session (outlook-large-attachments, attachment-createuploadsession):
`createUploadSession` on a message answers a pre-authenticated URL on the emulator's own Outlook path
(`/api/gv1.0/…?authtoken=…`), which takes `PUT` byte ranges in order without an `Authorization`
header, and `DELETE` to cancel."""

from __future__ import annotations

import re
import secrets
import uuid
from typing import Any
from urllib.parse import quote

from aiohttp import web

from m365emulator.errors import GraphError
from m365emulator.graph import emulator_of, json_body, mailbox_user, param, respond
from m365emulator.mail.model import Attachment, UploadSession, message_too_large
from m365emulator.mail.routes import WRITE, add_attachment, store_of
from m365emulator.odata import graph_datetime

_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")


def _session_url(base: str, session: UploadSession) -> str:
    return (
        f"{base}/api/gv1.0/users('{quote(session.mailbox)}@{quote(session.tenant_id)}')"
        f"/messages('{quote(session.message_id)}')/AttachmentSessions('{session.id}')"
        f"?authtoken={session.token}"
    )


async def create_upload_session(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    user = mailbox_user(request, request.match_info["user"], WRITE)
    store = store_of(request)
    message = store.get(user.id, request.match_info["mid"])
    item = param(await json_body(request), "AttachmentItem")
    if not isinstance(item, dict):
        raise GraphError(
            400, "ErrorInvalidParameter", "The value of the parameter 'AttachmentItem' is empty."
        )
    if str(item.get("attachmentType") or "file").lower() != "file":
        raise GraphError(400, "ErrorInvalidParameter", "Only attachmentType 'file' can be uploaded.")
    name, size = item.get("name"), item.get("size")
    if not isinstance(name, str) or not name:
        raise GraphError(400, "ErrorInvalidParameter", "AttachmentItem needs a name.")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise GraphError(400, "ErrorInvalidParameter", "AttachmentItem needs its size in bytes.")
    if size < store.settings.mail_attachment_post_max_bytes:
        raise GraphError(
            400,
            "ErrorAttachmentSizeShouldNotBeLessThanMinimumSize",
            "Attachment size must be greater than the minimum size.",
        )
    if message.size() + size > store.settings.mail_message_max_bytes:
        raise message_too_large(store.settings.mail_message_max_bytes)
    session = UploadSession(
        id="AAMkADUs" + uuid.uuid4().hex,
        mailbox=user.id,
        tenant_id=user.tenant_id,
        message_id=message.immutable_id,
        token=secrets.token_urlsafe(32),
        name=name,
        size=size,
        content_type=str(item.get("contentType") or "application/octet-stream"),
        is_inline=bool(item.get("isInline")),
        content_id=item.get("contentId") if isinstance(item.get("contentId"), str) else None,
        expires=store.session_expiry(),
    )
    store.open_session(session)
    body: dict[str, Any] = {
        "@odata.context": f"{emu.graph_url}/$metadata#microsoft.graph.uploadSession",
        "uploadUrl": _session_url(emu.authority, session),
        "expirationDateTime": graph_datetime(session.expires),
        "nextExpectedRanges": ["0-"],
    }
    return respond(body, 201)


def _session(request: web.Request) -> UploadSession:
    if request.headers.get("Authorization"):
        # What Outlook answers a Graph token on this URL [I:microsoftgraph/msgraph-sdk-java-core#445].
        raise GraphError(401, "InvalidAudience", "The audience claim value is invalid 'aud'.")
    match = re.search(r"/AttachmentSessions\('([^']+)'\)$", request.path)
    store = store_of(request)
    session = store.sessions.get(match.group(1)) if match else None
    token = request.query.get("authtoken", "")
    if session is None or not secrets.compare_digest(token, session.token):
        raise GraphError(404, "ErrorItemNotFound", "The upload session was not found.")
    if session.expires <= store.clock.now():
        raise GraphError(404, "ErrorItemNotFound", "The upload session has expired.")
    return session


def _state(session: UploadSession) -> dict[str, Any]:
    return {
        "expirationDateTime": graph_datetime(session.expires),
        "nextExpectedRanges": session.next_ranges(),
    }


async def upload_range(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    session = _session(request)
    chunk = await request.read()
    if session.attachment_id is not None:
        # The client re-sends after the last byte arrived: the attachment stands, once [UNDOC].
        return _created(emu.authority, session)
    match = _RANGE.match(request.headers.get("Content-Range", "").strip())
    if not match:
        raise GraphError(
            400, "ErrorInvalidContentRange", "Content-Range must be 'bytes {start}-{end}/{total}'."
        )
    start, end, total = (int(g) for g in match.groups())
    if total != session.size or end < start or end >= total or end - start + 1 != len(chunk):
        raise GraphError(
            400,
            "ErrorInvalidContentRange",
            f"The range {start}-{end}/{total} does not fit the body ({len(chunk)} bytes) or the file "
            f"({session.size} bytes).",
        )
    received = len(session.received)
    if start > received:
        raise GraphError(
            416,
            "ErrorInvalidContentRange",
            f"Upload bytes in order; the next one expected is {received}.",
        )
    if end >= received:
        session.received.extend(chunk[received - start :])
    if len(session.received) < session.size:
        return respond(_state(session))
    store = store_of(request)
    message = store.by_immutable_id(session.mailbox, session.message_id)
    if message is None:
        raise GraphError(404, "ErrorItemNotFound", "The message of this upload session no longer exists.")
    attachment = Attachment(
        id="AAMkADAt" + uuid.uuid4().hex,
        name=session.name,
        content_type=session.content_type,
        content=bytes(session.received),
        is_inline=session.is_inline,
        content_id=session.content_id,
        modified=store.clock.now(),
    )
    add_attachment(store, message, attachment)
    session.attachment_id = attachment.id
    session.received = bytearray()
    return _created(emu.authority, session)


def _created(authority: str, session: UploadSession) -> web.Response:
    location = (
        f"{authority}/api/gv1.0/users('{quote(session.mailbox)}@{quote(session.tenant_id)}')"
        f"/messages('{quote(session.message_id)}')/Attachments('{session.attachment_id}')"
    )
    return web.Response(status=201, headers={"Location": location})


async def cancel_session(request: web.Request) -> web.Response:
    session = _session(request)
    store_of(request).sessions.pop(session.id, None)
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    base = "/v1.0/users/{user}"
    for prefix in (base + "/messages/{mid}", base + "/mailFolders/{folder}/messages/{mid}"):
        app.router.add_post(prefix + "/attachments/createUploadSession", create_upload_session)
        app.router.add_post(
            prefix + "/attachments/microsoft.graph.createUploadSession", create_upload_session
        )
    app.router.add_put("/api/gv1.0/{path:.*}", upload_range)
    app.router.add_delete("/api/gv1.0/{path:.*}", cancel_session)
