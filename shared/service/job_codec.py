"""The queue message of every job: a JSON object, the job's `kind` and its record's fields as members.

`decode` is `encode`'s inverse and raises `MalformedJob` for anything else: a body that is not a JSON
object, a kind its queue does not carry (`UnknownJobKind`), a member missing or of the wrong type. The
queue triggers drop such a message (logged): delivering it again can only fail again. Members a record
does not know are ignored, and a member the record has a default for may be missing.

Messages queued before the records existed decode unchanged (`{"kind": ..., "tenant_id": ..., ...}`),
a `notified` one's directory id under `tenant_id` too.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Final, get_type_hints

from shared.service.jobs import JOB_TYPES, Job

# a member's name in messages queued before it had one of its own
LEGACY_NAMES: Final = {"directory_id": "tenant_id"}


_FIELDS: Final = {t: tuple(f for f in dataclasses.fields(t) if f.name != "delay_seconds") for t in JOB_TYPES}
# each record's fields' types (a record's ClassVars are not fields)
_TYPES: Final = {t: {f.name: get_type_hints(t)[f.name] for f in dataclasses.fields(t)} for t in JOB_TYPES}


def _kinds(record: type[Job]) -> list[str]:
    shared = _TYPES[record].get("kind")
    return [str(k) for k in shared] if shared is not None else [vars(record)["kind"]]


KINDS: Final[dict[tuple[str, str], type[Job]]] = {(t.queue, k): t for t in JOB_TYPES for k in _kinds(t)}


class MalformedJob(ValueError):
    """A queue message that carries no job."""


class UnknownJobKind(MalformedJob):
    """A message of a kind its queue does not carry (a newer version's, or another queue's)."""


def encode(job: Job) -> str:
    members = {f.name: getattr(job, f.name) for f in _fields(type(job)) if f.name != "kind"}
    return json.dumps({"kind": str(job.kind), **members}, separators=(",", ":"))


def decode(queue: str, body: bytes | str) -> Job:
    try:
        data: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise MalformedJob("not JSON") from error
    if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
        raise MalformedJob("not a job message")
    record = KINDS.get((queue, data["kind"]))
    if record is None:
        raise UnknownJobKind(f"no job of kind {data['kind']!r} on {queue}")
    values = {f.name: _member(record, f, data) for f in _fields(record) if _present(f, data)}
    if "kind" in _TYPES[record]:  # a record some kinds share: its kind is a field
        values["kind"] = _TYPES[record]["kind"](data["kind"])
    try:
        return record(**values)
    except (TypeError, ValueError) as error:  # a member missing, or a record's own check
        raise MalformedJob(str(error)) from error


def _fields(record: type[Job]) -> tuple[dataclasses.Field[Any], ...]:
    return _FIELDS[record]


def _name_in(f: dataclasses.Field[Any], data: dict[str, Any]) -> str:
    return f.name if f.name in data else LEGACY_NAMES.get(f.name, f.name)


def _present(f: dataclasses.Field[Any], data: dict[str, Any]) -> bool:
    return f.name != "kind" and _name_in(f, data) in data


def _member(record: type[Job], f: dataclasses.Field[Any], data: dict[str, Any]) -> Any:
    value = data[_name_in(f, data)]
    expected = _TYPES[record][f.name]
    if expected is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if expected in (str, bool) and isinstance(value, expected):
        return value
    if expected == int | None and (value is None or (isinstance(value, int) and not isinstance(value, bool))):
        return value
    if expected == str | None and (value is None or isinstance(value, str)):
        return value
    if expected == tuple[str, ...] and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise MalformedJob(f"{f.name}: not a {expected}")
