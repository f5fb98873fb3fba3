"""OData query options for events: `$filter`, `$select`, `$orderby`, `$expand` (the basics).

`$filter` supports `eq ne gt ge lt le`, `and or not`, parentheses, `contains`, `startswith`,
`endswith`, and lambda `any`/`all` over collections (`categories/any(c: c eq 'X')`,
`singleValueExtendedProperties/Any(ep: ep/id eq '...' and ep/value eq '...')`). String
comparisons are case-insensitive (Exchange), except an extended property's id, whose Name part is
case-sensitive (its type and GUID are not). Date-time strings compare as instants.
An expression outside this subset is a 400 `ErrorInvalidUrlQueryFilter`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from m365emulator.errors import GraphError

EXT_COLLECTION = "singlevalueextendedproperties"


def ext_key(prop_id: str) -> str:
    """Normalised extended-property id: type, GUID and `Name`/`Id` case-insensitive, name as is."""
    parts = prop_id.split(None, 3)
    if len(parts) == 4 and parts[2].lower() == "name":
        return f"{parts[0].lower()} {parts[1].lower()} name {parts[3]}"
    return " ".join(p.lower() for p in prop_id.split())


def _bad_filter(message: str = "The query filter contains one or more invalid nodes.") -> GraphError:
    return GraphError(400, "ErrorInvalidUrlQueryFilter", message)


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>'(?:[^']|'')*')
      | (?P<num>-?\d[\w:.+\-]*)
      | (?P<punct>[()/,:])
      | (?P<name>[A-Za-z_@$][\w.@$]*)
    )""",
    re.X,
)


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise _bad_filter()
        pos = m.end()
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
    return out


class Record:
    """What a filter looks at: lazily rendered Graph JSON plus the stored extended properties."""

    def __init__(self, render: Callable[[], dict[str, Any]], ext: dict[str, tuple[str, str]] | None) -> None:
        self._render = render
        self._json: dict[str, Any] | None = None
        self.ext = ext or {}

    def get(self, name: str) -> Any:
        if name.lower() == EXT_COLLECTION:
            return [_ExtItem(key, given, value) for key, (given, value) in self.ext.items()]
        if self._json is None:
            self._json = self._render()
        for key, value in self._json.items():
            if key.lower() == name.lower():
                return value
        return None


@dataclass(frozen=True)
class _ExtItem:
    key: str
    id: str
    value: str


Node = Callable[[Any, dict[str, Any]], Any]


def _either(a: Node, b: Node) -> Node:
    return lambda r, env: bool(a(r, env)) or bool(b(r, env))


def _both(a: Node, b: Node) -> Node:
    return lambda r, env: bool(a(r, env)) and bool(b(r, env))


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0

    def peek(self, offset: int = 0) -> tuple[str, str] | None:
        j = self.i + offset
        return self.toks[j] if j < len(self.toks) else None

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise _bad_filter()
        self.i += 1
        return tok

    def expect(self, value: str) -> None:
        tok = self.take()
        if tok[1] != value:
            raise _bad_filter()

    def word(self, *values: str) -> bool:
        tok = self.peek()
        if tok and tok[0] == "name" and tok[1].lower() in values:
            self.i += 1
            return True
        return False

    def parse(self) -> Node:
        node = self.or_expr()
        if self.peek() is not None:
            raise _bad_filter()
        return node

    def or_expr(self) -> Node:
        left = self.and_expr()
        while self.word("or"):
            right = self.and_expr()
            left = _either(left, right)
        return left

    def and_expr(self) -> Node:
        left = self.not_expr()
        while self.word("and"):
            right = self.not_expr()
            left = _both(left, right)
        return left

    def not_expr(self) -> Node:
        if self.word("not"):
            inner = self.not_expr()
            return lambda r, env: not inner(r, env)
        return self.comparison()

    def comparison(self) -> Node:
        left = self.primary()
        tok = self.peek()
        if tok and tok[0] == "name" and tok[1].lower() in _OPS:
            self.i += 1
            op = _OPS[tok[1].lower()]
            right = self.primary()
            return lambda r, env: _compare(op, left(r, env), right(r, env))
        return left

    def primary(self) -> Node:
        kind, value = self.take()
        if value == "(":
            node = self.or_expr()
            self.expect(")")
            return node
        if kind == "str":
            text = value[1:-1].replace("''", "'")
            return lambda r, env: text
        if kind == "num":
            literal: Any = int(value) if re.fullmatch(r"-?\d+", value) else value
            return lambda r, env: literal
        if kind != "name":
            raise _bad_filter()
        low = value.lower()
        if low in ("true", "false"):
            flag = low == "true"
            return lambda r, env: flag
        if low == "null":
            return lambda r, env: None
        nxt = self.peek()
        if nxt and nxt[1] == "(" and low in _FUNCS:
            self.take()
            args = [self.or_expr()]
            while self.peek() and self.peek()[1] == ",":  # type: ignore[index]
                self.take()
                args.append(self.or_expr())
            self.expect(")")
            func = _FUNCS[low]
            if len(args) != 2:
                raise _bad_filter()
            a, b = args
            return lambda r, env: func(a(r, env), b(r, env))
        return self.path(value)

    def path(self, first: str) -> Node:
        steps = [first]
        while self.peek() and self.peek()[1] == "/":  # type: ignore[index]
            self.take()
            kind, name = self.take()
            if kind != "name":
                raise _bad_filter()
            nxt = self.peek()
            if name.lower() in ("any", "all") and nxt and nxt[1] == "(":
                return self.lambda_(steps, name.lower())
            steps.append(name)
        return lambda r, env: _resolve(steps, r, env)

    def lambda_(self, steps: list[str], quantifier: str) -> Node:
        self.expect("(")
        if self.peek() and self.peek()[1] == ")":  # type: ignore[index]
            self.take()
            return lambda r, env: bool(_resolve(steps, r, env))
        kind, var = self.take()
        if kind != "name":
            raise _bad_filter()
        self.expect(":")
        body = self.or_expr()
        self.expect(")")
        is_any = quantifier == "any"

        def run(r: Any, env: dict[str, Any]) -> bool:
            items = _resolve(steps, r, env) or []
            results = (bool(body(r, {**env, var.lower(): item})) for item in items)
            return any(results) if is_any else all(results)

        return run


class _ExtId(str):
    """An extended property's id: compares on the normalised form."""


def _resolve(steps: list[str], record: Any, env: dict[str, Any]) -> Any:
    head = steps[0].lower()
    if head in env:
        value: Any = env[head]
        rest = steps[1:]
    else:
        value = record.get(steps[0])
        rest = steps[1:]
    for step in rest:
        if isinstance(value, _ExtItem):
            if step.lower() == "id":
                value = _ExtId(value.key)
            elif step.lower() == "value":
                value = value.value
            else:
                return None
            continue
        if not isinstance(value, dict):
            return None
        value = next((v for k, v in value.items() if k.lower() == step.lower()), None)
    return value


def _as_datetime(value: str) -> datetime | None:
    if len(value) < 10 or not value[:4].isdigit() or value[4] != "-":
        return None
    text = value[:-1] + "+00:00" if value.endswith("Z") else value
    text = re.sub(r"\.(\d+)", lambda m: "." + (m.group(1) + "000000")[:6], text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def _norm(a: Any, b: Any) -> tuple[Any, Any]:
    if isinstance(a, _ExtId) or isinstance(b, _ExtId):
        return ext_key(str(a)) if a is not None else None, ext_key(str(b)) if b is not None else None
    if isinstance(a, str) and isinstance(b, str):
        da, db = _as_datetime(a), _as_datetime(b)
        if da is not None and db is not None:
            return da, db
        return a.casefold(), b.casefold()
    return a, b


def _compare(op: str, a: Any, b: Any) -> bool:
    a, b = _norm(a, b)
    if op == "eq":
        return bool(a == b)
    if op == "ne":
        return bool(a != b)
    if a is None or b is None:
        return False
    try:
        if op == "gt":
            return bool(a > b)
        if op == "ge":
            return bool(a >= b)
        if op == "lt":
            return bool(a < b)
        return bool(a <= b)
    except TypeError:
        return False


def _strfunc(check: Callable[[str, str], bool]) -> Callable[[Any, Any], bool]:
    def run(a: Any, b: Any) -> bool:
        if not isinstance(a, str) or not isinstance(b, str):
            return False
        if isinstance(a, _ExtId) or isinstance(b, _ExtId):
            return check(ext_key(a), ext_key(b))
        return check(a.casefold(), b.casefold())

    return run


_OPS = {"eq": "eq", "ne": "ne", "gt": "gt", "ge": "ge", "lt": "lt", "le": "le"}
_FUNCS: dict[str, Callable[[Any, Any], bool]] = {
    "contains": _strfunc(lambda a, b: b in a),
    "startswith": _strfunc(lambda a, b: a.startswith(b)),
    "endswith": _strfunc(lambda a, b: a.endswith(b)),
}


MAX_FILTER = 4096


def compile_filter(text: str) -> Callable[[Record], bool]:
    if len(text) > MAX_FILTER:
        raise _bad_filter("The query filter is too long.")
    try:
        node = _Parser(text).parse()
    except RecursionError:
        raise _bad_filter("The query filter is nested too deeply.") from None
    return lambda record: bool(node(record, {}))


# ------------------------------------------------------------------------------ $select / $orderby / $expand

ALWAYS_SELECTED = ("@odata.etag", "id")


def parse_select(text: str | None) -> frozenset[str] | None:
    if not text:
        return None
    return frozenset(p.strip().lower() for p in text.split(",") if p.strip())


def apply_select(item: dict[str, Any], select: frozenset[str] | None) -> dict[str, Any]:
    if select is None:
        return item
    return {
        k: v
        for k, v in item.items()
        if k in ALWAYS_SELECTED or k.lower() in select or k == "singleValueExtendedProperties"
    }


def parse_orderby(text: str | None) -> list[tuple[str, bool]]:
    """[(path, descending)]."""
    if not text:
        return []
    out: list[tuple[str, bool]] = []
    for part in text.split(","):
        bits = part.strip().split()
        if not bits:
            continue
        if len(bits) > 2 or (len(bits) == 2 and bits[1].lower() not in ("asc", "desc")):
            raise GraphError(400, "BadRequest", f"Invalid $orderby expression '{part.strip()}'.")
        out.append((bits[0], len(bits) == 2 and bits[1].lower() == "desc"))
    return out


_EXPAND_EXT = re.compile(r"singleValueExtendedProperties\s*(?:\((?P<inner>.*)\))?\s*$", re.I | re.S)
_ID_EQ = re.compile(r"\bid\s+eq\s+'((?:[^']|'')*)'", re.I)


def parse_expand(text: str | None) -> tuple[frozenset[str] | None, bool]:
    """`$expand=singleValueExtendedProperties($filter=id eq '...' [or id eq '...'])` →
    (normalised ids, all). Other expansions are accepted and ignored."""
    if not text:
        return None, False
    ids: set[str] = set()
    wanted = False
    everything = False
    for part in _split_top(text):
        m = _EXPAND_EXT.match(part.strip())
        if not m:
            continue
        wanted = True
        inner = m.group("inner")
        found = _ID_EQ.findall(inner or "")
        if not found:
            everything = True
        ids.update(ext_key(f.replace("''", "'")) for f in found)
    if not wanted:
        return None, False
    return frozenset(ids), everything


def _split_top(text: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    quoted = False
    for ch in text:
        if ch == "'":
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
        elif not quoted and ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return parts
