"""The host API's limits on tenants, staff, settings, console links and appointments: one place, read by the
validating models (`bodies.py`, `appointment_bodies.py`), the parsers (`commands.py`,
`appointment_commands.py`) and the OpenAPI document."""

from __future__ import annotations

import re
from datetime import date
from typing import Final, Literal

GUID_ONLY: Final = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
STAFF_ID_RE: Final = re.compile(r"^[A-Za-z0-9._~@+=-]{1,128}$")  # safe as a Table Storage key
STAFF_ID_CHARS: Final = "1-128 characters: letters, digits and . _ ~ @ + = -"
MAX_SWITCH_STAFF: Final = 500  # staff members in one switches update (a page of the console)
MAX_TENANT_ID: Final = 253  # a DNS name; a GUID is 36
TENANT_ID_PATTERN: Final = (
    r"^(?:[0-9A-Fa-f]{8}-(?:[0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}"
    r"|(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63})$"
)
MAX_DISPLAY_NAME: Final = 256
MAX_ADDRESS: Final = 320  # an email address or UPN (RFC 5321: 64 + 1 + 255)
MAX_CLIENT_SECRET: Final = 1024
MAX_LEGACY_IDS: Final = 2_000  # kept on the user's row (Table Storage entities hold 1 MB)
MAX_LEGACY_ID_LENGTH: Final = 512
# The links are kept on the user's row as ASCII JSON (Table Storage entities hold 1 MiB of UTF-16).
MAX_LEGACY_JSON: Final = 400_000
MAX_TODO_LIST_NAME: Final = 255
WINDOW_DAYS_BACK: Final = (0, 365)
WINDOW_DAYS_FORWARD: Final = (1, 730)
# The settings are kept in the tenant's row as ASCII JSON in one string property (at most 32K UTF-16
# units), where a character beyond ASCII takes up to 12 (an astral one: two \uXXXX escapes). So the
# category names (each at most 255 characters, as Outlook's: "Maximum length is 255 characters",
# https://learn.microsoft.com/en-us/javascript/api/outlook/office.categorydetails) are at most 2,000
# together: 24,000 at worst, beside the To Do list name's 3,060 and the rest.
MAX_CATEGORIES: Final = 50
MAX_CATEGORY_NAME: Final = 255
MAX_CATEGORY_CHARS: Final = 2_000
# A console link's lifetime, in minutes.
DEFAULT_TTL_MINUTES: Final = 60
MIN_TTL_MINUTES: Final = 5
MAX_TTL_MINUTES: Final = 24 * 60

# Appointments
APPOINTMENT_ID_RE: Final = re.compile(r"^[A-Za-z0-9._~@+=-]{1,128}$")  # safe as a key and in a transactionId
APPOINTMENT_ID_CHARS: Final = "must be 1-128 characters of letters, digits and . _ ~ @ + = -"
MAX_SUBJECT: Final = 255
MAX_BODY: Final = 64_000
MAX_LOCATION: Final = 255
MAX_STAFF: Final = 20
MAX_CUSTOMERS: Final = 100
MAX_CUSTOMER_NAME: Final = 256  # a customer's address is at most MAX_ADDRESS
MAX_APPOINTMENT_CATEGORIES: Final = 25  # each at most MAX_CATEGORY_NAME, as a tenant's
MAX_RRULE: Final = 1_000
MAX_EXCEPTIONS: Final = 200
# Dates an appointment may fall on: Outlook's calendars (FILETIME, from 1601) hold these, and every zone's
# offset applied to them stays a valid Python date.
EARLIEST: Final = date(1900, 1, 1)
LATEST: Final = date(2999, 12, 31)
# The appointment is kept as ASCII JSON in its row (Table Storage: 1 MiB of UTF-16 per entity, with the
# per-staff copies beside it); text beyond ASCII takes up to 12 characters there (two \uXXXX escapes).
MAX_STORED: Final = 400_000
ShowAs = Literal["free", "tentative", "busy", "oof", "workingElsewhere"]
Sensitivity = Literal["normal", "personal", "private", "confidential"]
BodyType = Literal["text", "html"]

# Mail (PUT /tenants/{tid}/mail/{message_id}); each limit is the service's own, sourced:
# - Exchange Online's recipient rate limit: at most 500 recipients (To, Cc and Bcc together) per message
#   (https://learn.microsoft.com/en-us/office365/servicedescriptions/exchange-online-service-description/exchange-online-limits#sending-limits-1).
# - Exchange Online's default maximum send size is 35 MB (a mailbox's MaxSendSize; an administrator may raise
#   it to 150 MB, Graph's upload-session ceiling): the attachments together stay under it.
# - Graph takes a request of at most 4 MB and attachments under 3 MB in the message's own POST; larger ones
#   (up to 150 MB) through an upload session on the draft
#   (https://learn.microsoft.com/en-us/graph/outlook-large-attachments).
# - Custom headers must begin with `X-` (Graph's internetMessageHeaders rule,
#   https://learn.microsoft.com/en-us/graph/api/resources/internetmessageheader).
MESSAGE_ID_RE: Final = re.compile(r"^[A-Za-z0-9._~@+=-]{1,128}$")  # a Table key and a blob name part
MESSAGE_ID_CHARS: Final = "must be 1-128 characters of letters, digits and . _ ~ @ + = -"
MAX_RECIPIENTS: Final = 500
MAX_ATTACHMENTS_BYTES: Final = 35 * 1024 * 1024
MAX_UPLOAD_SESSION_BYTES: Final = 150 * 1024 * 1024
INLINE_ATTACHMENT_BYTES: Final = 3 * 1024 * 1024  # smaller ones may go in the draft's POST
# Inline attachments and the body share the draft's POST (4 MB with base64's third more): at most this
# much attachment content in it, and a body of at most MAX_MAIL_BODY characters.
INLINE_BUDGET_BYTES: Final = 2 * 1024 * 1024
MAX_MAIL_BODY: Final = 1_000_000
MAX_MAIL_SUBJECT: Final = 255
MAX_ATTACHMENTS: Final = 250
MAX_ATTACHMENT_NAME: Final = 255
MAX_HEADERS: Final = 20
MAX_HEADER_NAME: Final = 128
MAX_HEADER_VALUE: Final = 1_000
MAIL_DEADLINE_HOURS: Final = (1, 168)  # a tenant's `mail_deadline_hours`, at most a week
MONITOR_RETENTION_DAYS: Final = (1, 90)  # a tenant's `monitor_retention_days`
FEED_RETENTION_DAYS: Final = (1, 365)  # a tenant's `feed_retention_days`
# Availability questions: one getSchedule batch (100 addresses) answers every staff member a question names
# even when none is synced, and a question stays cheap to answer from the synced state; the span is
# getSchedule's longest window, so the fallback can always answer it in one request per batch.
MAX_PARTICIPANT_GROUPS: Final = 20
MAX_QUESTION_STAFF: Final = 50
MAX_QUESTION_DAYS: Final = 62
MAX_PERIODS: Final = 100
MAX_RESULTS: Final = 512
DEFAULT_RESULTS: Final = 100
MAX_BUFFER_MINUTES: Final = 24 * 60
MAX_INTERVAL_MINUTES: Final = 24 * 60

# Tasks (To Do)
MAX_TASK_TITLE: Final = 255  # To Do's title (the emulator refuses longer, as Exchange does a task subject)
MAX_TASK_BODY: Final = 64_000  # the note: as an appointment's body, within the stored row's 64 KiB property
MAX_TASK_CATEGORIES: Final = 25
MAX_CHECKLIST: Final = 100  # To Do's steps per task
MAX_CHECKLIST_TITLE: Final = 255
