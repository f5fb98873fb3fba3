"""The host's mail body (`PUT /tenants/{tid}/mail/{message_id}`) as pydantic models: each member's type
and limit (`shared/service/limits.py`, each sourced there), the member at fault named by its path
(`to[3].address`, `attachments[0].content_base64`), and the OpenAPI component `MailInput`. Imported by the
parser when it is first called and by the document, never at the cold start.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from shared.domain.mail import MailAttachment, MailContent, OutgoingMail, Recipient
from shared.service import limits
from shared.service.appointment_bodies import EMAIL
from shared.service.bodies import Body, parse, refuse


class MailPart(Body):
    """An object of the mail body: texts are kept as sent; unknown members are refused."""

    model_config = ConfigDict(str_strip_whitespace=False)
    unknown_reason = "is not a member of the mail body"


def _address(value: Any) -> Any:
    if isinstance(value, str) and not EMAIL.match(value.strip()):
        raise refuse("must be an address like someone@contoso.com")
    return value.strip() if isinstance(value, str) else value


class MailRecipient(MailPart):
    name: Annotated[StrictStr, Field(max_length=limits.MAX_DISPLAY_NAME)] = ""
    address: Annotated[
        StrictStr,
        BeforeValidator(_address),
        Field(max_length=limits.MAX_ADDRESS, json_schema_extra={"pattern": "@"}),
    ]

    def record(self) -> Recipient:
        return Recipient(self.name, self.address)


class MailBody(MailPart):
    content_type: Literal["text", "html"] = "text"
    content: Annotated[StrictStr, Field(max_length=limits.MAX_MAIL_BODY)] = ""


def _base64(value: Any) -> Any:
    if not isinstance(value, str):
        raise refuse("must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise refuse("is not valid base64") from None


class MailAttachmentInput(MailPart):
    name: Annotated[StrictStr, Field(min_length=1, max_length=limits.MAX_ATTACHMENT_NAME, pattern=r"\S")]
    content_type: Annotated[StrictStr, Field(max_length=255)] = "application/octet-stream"
    content_base64: Annotated[
        bytes,
        BeforeValidator(_base64),
        WithJsonSchema({"type": "string", "format": "byte"}),
        Field(description="The file's bytes, base64 (RFC 4648, standard alphabet, padded)."),
    ]
    content_id: Annotated[StrictStr, Field(max_length=255)] | None = Field(
        None, description="For an inline image: the id an HTML body names as cid:..."
    )
    is_inline: StrictBool = False

    def record(self) -> MailAttachment:
        return MailAttachment(
            self.name, self.content_type, self.content_base64, self.content_id, self.is_inline
        )


People = Annotated[list[MailRecipient], Field(max_length=limits.MAX_RECIPIENTS)]


def _headers(value: Any) -> Any:
    if not isinstance(value, dict):
        raise refuse("must be an object of header names to values")
    if len(value) > limits.MAX_HEADERS:
        raise refuse(f"must have at most {limits.MAX_HEADERS} headers")
    for name, text in value.items():
        if not name.lower().startswith("x-") or len(name) > limits.MAX_HEADER_NAME:
            raise refuse(
                f"header {name[:40]!r} must start with X- (Graph sends custom headers only) and be at most "
                f"{limits.MAX_HEADER_NAME} characters"
            )
        if not isinstance(text, str) or len(text) > limits.MAX_HEADER_VALUE:
            raise refuse(f"header {name!r} must be a string of at most {limits.MAX_HEADER_VALUE} characters")
    return value


class MailInput(MailPart):
    """A message sent from the staff member's mailbox. Recipients (to, cc and bcc together) at most 500
    (Exchange Online's limit per message); the attachments at most 35 MB together (Exchange Online's default
    maximum send size): those under 3 MB travel in the draft's request, larger ones through upload sessions.
    Header names must start with `X-`."""

    unknown_reason = "is not a member of the mail body"
    from_staff_id: Annotated[StrictStr, Field(min_length=1, max_length=128)]
    to: People = []
    cc: People = []
    bcc: People = []
    reply_to: Annotated[list[MailRecipient], Field(max_length=limits.MAX_RECIPIENTS)] = []
    subject: Annotated[StrictStr, Field(max_length=limits.MAX_MAIL_SUBJECT)] = ""
    body: MailBody = MailBody()
    attachments: Annotated[list[MailAttachmentInput], Field(max_length=limits.MAX_ATTACHMENTS)] = []
    importance: Literal["low", "normal", "high"] = "normal"
    save_to_sent_items: StrictBool = True
    headers: Annotated[
        dict[str, str],
        BeforeValidator(_headers),
        Field(description="Custom internet message headers; each name starts with X-."),
    ] = {}

    @field_validator("from_staff_id")
    @classmethod
    def _staff_id(cls, value: str) -> str:
        if not limits.STAFF_ID_RE.match(value):
            raise refuse(limits.STAFF_ID_CHARS)
        return value

    @model_validator(mode="after")
    def _sendable(self) -> MailInput:
        count = len(self.to) + len(self.cc) + len(self.bcc)
        if count == 0:
            raise refuse("give at least one recipient in to, cc or bcc", "to")
        if count > limits.MAX_RECIPIENTS:
            raise refuse(
                f"{count} recipients in to, cc and bcc; Exchange Online takes at most "
                f"{limits.MAX_RECIPIENTS} per message",
                "to",
            )
        total = sum(len(a.content_base64) for a in self.attachments)
        if total > limits.MAX_ATTACHMENTS_BYTES:
            raise refuse(
                f"{total} bytes of attachments; at most {limits.MAX_ATTACHMENTS_BYTES} together (Exchange "
                "Online's default maximum message size)",
                "attachments",
            )
        return self

    def record(self, message_id: str) -> OutgoingMail:
        content = MailContent(
            subject=self.subject,
            body_type=self.body.content_type,
            body=self.body.content,
            to=tuple(p.record() for p in self.to),
            cc=tuple(p.record() for p in self.cc),
            bcc=tuple(p.record() for p in self.bcc),
            reply_to=tuple(p.record() for p in self.reply_to),
            attachments=tuple(a.record() for a in self.attachments),
            importance=self.importance,
            headers=tuple(self.headers.items()),
        )
        return OutgoingMail(message_id, self.from_staff_id, content, self.save_to_sent_items)


def parse_mail(message_id: str, body: Any) -> OutgoingMail:
    """The body as the domain's `OutgoingMail`, or InvalidInput naming the member at fault."""
    return parse(MailInput, body).record(message_id)


REQUEST_MODELS = (MailInput,)
