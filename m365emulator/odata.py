"""OData bits the Graph surfaces share: Prefer headers, `$filter` (directory subset), `$select`,
`$top`, opaque page tokens, and Graph's date-time formats."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from m365emulator.errors import GraphError

# --- Prefer -------------------------------------------------------------------------------------


def parse_prefer(values: list[str]) -> dict[str, str]:
    """`Prefer: odata.maxpagesize=50, outlook.timezone="UTC"` (kiota folds several into one header).

    Keys are lower-cased; values lose their quotes; a bare token (`return=minimal` has a value,
    `respond-async` has none) maps to "".
    """
    out: dict[str, str] = {}
    for header in values:
        for raw in _split_outside_quotes(header, ","):
            part = raw.strip()
            if not part:
                continue
            name, _, value = part.partition("=")
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            out[name.strip().lower()] = value
    return out


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == sep and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def page_size(request_query: dict[str, str], prefer: dict[str, str], *, default: int, maximum: int) -> int:
    """`$top` wins over `Prefer: odata.maxpagesize`; both are clamped to [1, maximum]."""
    raw = request_query.get("$top") or prefer.get("odata.maxpagesize")
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise GraphError(400, "BadRequest", f"Invalid value '{raw}' for $top query option.") from exc
    if value < 1:
        raise GraphError(400, "BadRequest", f"Invalid value '{raw}' for $top query option.")
    return min(value, maximum)


def select_fields(query: dict[str, str]) -> list[str] | None:
    raw = query.get("$select")
    if not raw:
        return None
    return [f.strip() for f in raw.split(",") if f.strip()]


def apply_select(item: dict[str, Any], fields: list[str] | None, default: tuple[str, ...]) -> dict[str, Any]:
    """Graph returns exactly the selected properties (case-insensitive names), else the default set."""
    if fields is None:
        return {k: item[k] for k in default if k in item}
    lowered = {k.lower(): k for k in item}
    out: dict[str, Any] = {}
    for f in fields:
        key = lowered.get(f.lower())
        if key is not None:
            out[key] = item[key]
    return out


# --- opaque tokens (skip tokens, delta tokens) -------------------------------------------------


def encode_token(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_token(token: str) -> dict[str, Any] | None:
    try:
        token = token.strip("'")
        decoded = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, json.JSONDecodeError):
        return None
    return decoded if isinstance(decoded, dict) else None


# --- date-times ---------------------------------------------------------------------------------


def graph_datetime(value: datetime) -> str:
    """`2016-11-20T18:23:45.9356913Z`: UTC with seven fractional digits, as Graph writes them."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def parse_datetime(text: str) -> datetime:
    """ISO 8601 with or without offset (none = UTC), any number of fractional digits."""
    cleaned = text.strip()
    match = re.match(r"^(.*T\d{2}:\d{2}:\d{2})\.(\d+)(.*)$", cleaned)
    if match:
        cleaned = f"{match[1]}.{match[2][:6].ljust(6, '0')}{match[3]}"
    parsed = datetime.fromisoformat(cleaned)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


# --- $filter (the directory subset) -------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<lp>\()|(?P<rp>\))|(?P<comma>,)|(?P<colon>:)|(?P<slash>/)"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_.@-]*))"
)

Predicate = Callable[[dict[str, Any]], bool]


def _unsupported(detail: str) -> GraphError:
    return GraphError(
        400, "Request_UnsupportedQuery", f"Unsupported or invalid query filter clause: {detail}"
    )


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise _unsupported(text)
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    return tokens


def _norm(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _either(a: Predicate, b: Predicate) -> Predicate:
    return lambda item: a(item) or b(item)


def _both(a: Predicate, b: Predicate) -> Predicate:
    return lambda item: a(item) and b(item)


class _FilterParser:
    def __init__(self, text: str, properties: set[str]) -> None:
        self.tokens = _tokenize(text)
        self.pos = 0
        self.properties = {p.lower(): p for p in properties}
        self.text = text

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, kind: str | None = None, word: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (kind and tok[0] != kind) or (word and tok[1].lower() != word):
            raise _unsupported(self.text)
        self.pos += 1
        return tok[1]

    def at_word(self, *words: str) -> bool:
        tok = self.peek()
        return tok is not None and tok[0] == "word" and tok[1].lower() in words

    def parse(self) -> Predicate:
        pred = self.or_expr()
        if self.peek() is not None:
            raise _unsupported(self.text)
        return pred

    def or_expr(self) -> Predicate:
        left = self.and_expr()
        while self.at_word("or"):
            self.take()
            right = self.and_expr()
            left = _either(left, right)
        return left

    def and_expr(self) -> Predicate:
        left = self.primary()
        while self.at_word("and"):
            self.take()
            right = self.primary()
            left = _both(left, right)
        return left

    def literal(self) -> Any:
        tok = self.peek()
        if tok is None:
            raise _unsupported(self.text)
        if tok[0] == "str":
            self.pos += 1
            return tok[1][1:-1].replace("''", "'")
        if tok[0] == "word" and tok[1].lower() in ("true", "false", "null"):
            self.pos += 1
            return {"true": True, "false": False, "null": None}[tok[1].lower()]
        raise _unsupported(self.text)

    def prop(self) -> str:
        name = self.take("word")
        real = self.properties.get(name.lower())
        if real is None:
            raise _unsupported(f"property '{name}'")
        return real

    def primary(self) -> Predicate:
        tok = self.peek()
        if tok is None:
            raise _unsupported(self.text)
        if tok[0] == "lp":
            self.take()
            inner = self.or_expr()
            self.take("rp")
            return inner
        if self.at_word("not"):
            self.take()
            inner = self.primary()
            return lambda item: not inner(item)
        if self.at_word("startswith", "endswith"):
            func = self.take().lower()
            self.take("lp")
            name = self.prop()
            self.take("comma")
            value = _norm(self.literal())
            self.take("rp")
            if func == "startswith":
                return lambda item: isinstance(item.get(name), str) and item[name].lower().startswith(value)
            return lambda item: isinstance(item.get(name), str) and item[name].lower().endswith(value)
        name = self.prop()
        nxt = self.peek()
        if nxt is not None and nxt[0] == "slash":
            return self.lambda_any(name)
        op = self.take("word").lower()
        if op == "in":
            self.take("lp")
            values = {_norm(self.literal())}
            while self.peek() is not None and self.peek()[0] == "comma":  # type: ignore[index]
                self.take()
                values.add(_norm(self.literal()))
            self.take("rp")
            return lambda item: _norm(item.get(name)) in values
        value = _norm(self.literal())
        if op == "eq":
            return lambda item: _norm(item.get(name)) == value
        if op == "ne":
            return lambda item: _norm(item.get(name)) != value
        raise _unsupported(f"operator '{op}'")

    def lambda_any(self, name: str) -> Predicate:
        self.take("slash")
        self.take("word", "any")
        self.take("lp")
        var = self.take("word")
        self.take("colon")
        if self.at_word("startswith"):
            self.take()
            self.take("lp")
            if self.take("word") != var:
                raise _unsupported(self.text)
            self.take("comma")
            prefix = _norm(self.literal())
            self.take("rp")
            self.take("rp")
            return lambda item: any(str(v).lower().startswith(prefix) for v in item.get(name) or [])
        terms = [self.member_term(var)]
        while self.at_word("and"):
            self.take()
            terms.append(self.member_term(var))
        self.take("rp")

        def matches(member: Any) -> bool:
            for sub, value in terms:
                got = member if sub is None else (member.get(sub) if isinstance(member, dict) else None)
                if _norm(got) != value:
                    return False
            return True

        return lambda item: any(matches(v) for v in item.get(name) or [])

    def member_term(self, var: str) -> tuple[str | None, Any]:
        """`x eq '…'` (a value of the collection) or `x/prop eq '…'` (a member of an object in it)."""
        if self.take("word") != var:
            raise _unsupported(self.text)
        sub: str | None = None
        nxt = self.peek()
        if nxt is not None and nxt[0] == "slash":
            self.take()
            sub = self.take("word")
        self.take("word", "eq")
        return sub, _norm(self.literal())


def parse_filter(text: str, properties: set[str]) -> Predicate:
    """A predicate over a JSON item for `eq`, `ne`, `in`, `startswith`, `endswith`,
    `prop/any(x: x eq '...')`, `and`, `or`, `not` and parentheses. Strings compare case-insensitively."""
    return _FilterParser(text, properties).parse()
