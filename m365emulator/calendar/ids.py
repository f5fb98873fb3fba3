"""Identifiers: REST ids, EWS ids, change keys and iCalUIds that look like Exchange's.

- An event id is `AAMkA` + base64url(24 random bytes). An occurrence id is the same over the
  master's bytes plus a marker and the original local date, so it is stable for a given master
  and original start, and the master can be read back from it. An exception keeps the id of
  the occurrence it replaced (as in Exchange).
- The EWS id of an item is its REST id in standard base64 (`-` → `/`, `_` → `+`), which is what
  `translateExchangeIds` does between `restId` and `ewsId`.
- Its immutable id (`restImmutableEntryId`, what `Prefer: IdType="ImmutableId"` answers) is another
  string (`AAkALg…`, the shape of Exchange's) over the same bytes: distinct from the REST id, as in
  Graph, and the same for the item's whole life (items never move folders here, so neither id ever
  changes). Either form is accepted wherever an id is taken.
- iCalUIds are Outlook Global Object Ids: the master's has zero instance-date bytes, an
  occurrence's carries its original date (year, month, day), so each occurrence has its own.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from datetime import date

from m365emulator.errors import GraphError

_PREFIX = "AAMkA"
_IMMUTABLE_PREFIX = "AAkALgAAAAAA"
_RAW = 24
_OCCURRENCE = 1
_GOID_CLASS = "040000008200E00074C5B7101A82E008"


def new_event_id() -> str:
    return _PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(_RAW)).decode()


def occurrence_id(master_id: str, day: date) -> str:
    raw = _decode(master_id)
    payload = raw[:_RAW] + bytes([_OCCURRENCE]) + day.toordinal().to_bytes(3, "big")
    return _PREFIX + base64.urlsafe_b64encode(payload).decode()


def immutable_id(rest_id: str) -> str:
    """The immutable id of the item (or occurrence) with this REST id."""
    if not rest_id.startswith(_PREFIX):
        raise _malformed()
    return _IMMUTABLE_PREFIX + rest_id[len(_PREFIX) :]


def rest_id(value: str) -> str:
    """The REST id of an item named by its REST or its immutable id."""
    if value.startswith(_IMMUTABLE_PREFIX):
        return _PREFIX + value[len(_IMMUTABLE_PREFIX) :]
    return value


def parse_id(value: str) -> tuple[str, date | None]:
    """(event id, None) for a stored item's id; (master id, original date) for an occurrence id. The id
    may be the REST or the immutable one; the answer is in REST ids (the store's)."""
    value = rest_id(value)
    raw = _decode(value)
    if len(raw) == _RAW:
        return value, None
    if len(raw) == _RAW + 4 and raw[_RAW] == _OCCURRENCE:
        master = _PREFIX + base64.urlsafe_b64encode(raw[:_RAW]).decode()
        try:
            day = date.fromordinal(int.from_bytes(raw[_RAW + 1 :], "big"))
        except ValueError:
            raise _malformed() from None
        return master, day
    raise _malformed()


def _malformed() -> GraphError:
    return GraphError(400, "ErrorInvalidIdMalformed", "Id is malformed.")


def _decode(value: str) -> bytes:
    if not value.startswith(_PREFIX):
        raise _malformed()
    try:
        return base64.urlsafe_b64decode(value[len(_PREFIX) :].encode())
    except (binascii.Error, ValueError):
        raise _malformed() from None


def ews_id(rest_id: str) -> str:
    return rest_id.replace("-", "/").replace("_", "+")


def rest_id_from_ews(value: str) -> str:
    return value.replace("/", "-").replace("+", "_")


def new_change_key() -> str:
    return base64.b64encode(secrets.token_bytes(21)).decode()


def ical_uid_of(event_id: str) -> str:
    """The iCalUId of a stored item or occurrence, derived from its id (nothing stored)."""
    master, day = parse_id(event_id)
    raw = _decode(master)
    uid = (
        f"{_GOID_CLASS}00000000{raw[:8].hex().upper()}0000000000000000" + f"10000000{raw[8:24].hex().upper()}"
    )
    return uid if day is None else occurrence_ical_uid(uid, day)


def occurrence_ical_uid(master_uid: str, day: date) -> str:
    if not master_uid.startswith(_GOID_CLASS) or len(master_uid) < len(_GOID_CLASS) + 8:
        return f"{master_uid}-{day:%Y%m%d}"
    stamp = f"{day.year >> 8:02X}{day.year & 0xFF:02X}{day.month:02X}{day.day:02X}"
    return master_uid[: len(_GOID_CLASS)] + stamp + master_uid[len(_GOID_CLASS) + 8 :]
