"""Route templates as the Functions host (ASP.NET Core routing) reads them, and the route table.

Supported: literal segments (matched case-insensitively), `{name}`, `{name?}` (optional),
`{name=default}`, `{*rest}` / `{**rest}` (catch-all, last segment), complex segments
(`{name}.{ext}`), `{{`/`}}` escapes, and the inline constraints `int`, `long`, `bool`, `datetime`,
`decimal`, `double`, `float`, `guid`, `alpha`, `minlength(n)`, `maxlength(n)`, `length(n)`,
`length(a,b)`, `min(n)`, `max(n)`, `range(a,b)`, `regex(expr)` and `required`. Route values are
percent-decoded after matching (so `%2F` stays inside one segment, as in ASP.NET Core).

When several templates match, the most specific wins: per segment a literal beats a complex segment,
which beats a constrained parameter, which beats a plain one, which beats a catch-all.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Generic, TypeVar
from urllib.parse import unquote

T = TypeVar("T")

_GUID: Final = re.compile(
    r"^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    r"|\{[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\}"
    r"|\([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\)"
    r"|[0-9a-f]{32})$",
    re.IGNORECASE,
)
_INTEGER: Final = re.compile(r"^[+-]?\d+$")
_ALPHA: Final = re.compile(r"^[a-zA-Z]+$")
_PARAM_NAME: Final = re.compile(r"^[^{}/?*=:]+$")
INT32: Final = (-(2**31), 2**31 - 1)
INT64: Final = (-(2**63), 2**63 - 1)

# Precedence digits per segment (lower is more specific), after ASP.NET Core's RoutePrecedence.
_LITERAL, _COMPLEX, _CONSTRAINED, _PARAMETER, _CATCH_ALL = 1, 2, 3, 4, 5


class RouteTemplateError(ValueError):
    """The route template is malformed or uses an unknown constraint."""


Constraint = Callable[[str], bool]


def _integer_in(bounds: tuple[int, int]) -> Constraint:
    def check(value: str) -> bool:
        return bool(_INTEGER.match(value)) and bounds[0] <= int(value) <= bounds[1]

    return check


def _is_float(value: str) -> bool:
    try:
        number = float(value)
    except ValueError:
        return False
    return math.isfinite(number)


def _is_bool(value: str) -> bool:
    return value.lower() in {"true", "false"}


def _is_datetime(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _int_args(name: str, args: Sequence[str], count: int) -> list[int]:
    if len(args) != count or not all(_INTEGER.match(a.strip()) for a in args):
        raise RouteTemplateError(f"constraint {name} takes {count} integer argument(s): {args!r}")
    return [int(a) for a in args]


def _number_between(low: int, high: int) -> Constraint:
    return lambda v: bool(_INTEGER.match(v)) and low <= int(v) <= high


def make_constraint(name: str, args: Sequence[str] | None) -> Constraint:
    """Build an inline route constraint (`int`, `length(1,10)`, `regex(^a+$)`, ...)."""
    simple: dict[str, Constraint] = {
        "int": _integer_in(INT32),
        "long": _integer_in(INT64),
        "bool": _is_bool,
        "datetime": _is_datetime,
        "decimal": _is_float,
        "double": _is_float,
        "float": _is_float,
        "guid": lambda v: bool(_GUID.match(v)),
        "alpha": lambda v: bool(_ALPHA.match(v)),
        "required": lambda v: v != "",
    }
    key = name.lower()
    if key in simple:
        if args:
            raise RouteTemplateError(f"constraint {name} takes no arguments")
        return simple[key]
    if args is None:
        raise RouteTemplateError(f"unknown route constraint {name!r}")
    if key == "regex":
        pattern = re.compile(",".join(args), re.IGNORECASE)  # ASP.NET: IsMatch, ignore case, unanchored
        return lambda v: pattern.search(v) is not None
    if key == "minlength":
        (n,) = _int_args(key, args, 1)
        return lambda v: len(v) >= n
    if key == "maxlength":
        (n,) = _int_args(key, args, 1)
        return lambda v: len(v) <= n
    if key == "length":
        if len(args) == 1:
            (n,) = _int_args(key, args, 1)
            return lambda v: len(v) == n
        low, high = _int_args(key, args, 2)
        return lambda v: low <= len(v) <= high
    if key == "min":
        (n,) = _int_args(key, args, 1)
        return _number_between(n, INT64[1])
    if key == "max":
        (n,) = _int_args(key, args, 1)
        return _number_between(INT64[0], n)
    if key == "range":
        low, high = _int_args(key, args, 2)
        return _number_between(low, high)
    raise RouteTemplateError(f"unknown route constraint {name!r}")


@dataclass(frozen=True)
class Parameter:
    name: str
    constraints: tuple[Constraint, ...] = ()
    optional: bool = False
    default: str | None = None
    catch_all: bool = False

    def accepts(self, value: str) -> bool:
        return all(check(value) for check in self.constraints)


Part = str | Parameter  # a segment is a sequence of literal text and parameters


def _split_constraints(body: str) -> list[str]:
    """Split `name:c1:c2(a,b)` on colons outside parentheses."""
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for ch in body:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(depth - 1, 0)
        if ch == ":" and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def _parse_parameter(body: str, template: str) -> Parameter:
    catch_all = False
    if body.startswith("**"):
        body, catch_all = body[2:], True
    elif body.startswith("*"):
        body, catch_all = body[1:], True
    default: str | None = None
    optional = False
    # A default value follows the first `=` outside a constraint's parentheses.
    depth = 0
    for index, ch in enumerate(body):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "=" and depth == 0:
            body, default = body[:index], body[index + 1 :]
            break
    if default is None and body.endswith("?"):
        body, optional = body[:-1], True
    pieces = _split_constraints(body)
    name = pieces[0].strip()
    if not name or not _PARAM_NAME.match(name):
        raise RouteTemplateError(f"invalid route parameter name {name!r} in {template!r}")
    if catch_all and optional:
        raise RouteTemplateError(f"a catch-all parameter cannot be optional in {template!r}")
    constraints: list[Constraint] = []
    for text in pieces[1:]:
        match = re.fullmatch(r"([A-Za-z]+)(?:\((.*)\))?", text, re.DOTALL)
        if match is None:
            raise RouteTemplateError(f"invalid constraint {text!r} in {template!r}")
        args = None if match.group(2) is None else match.group(2).split(",")
        if match.group(1).lower() == "regex" and match.group(2) is not None:
            args = [match.group(2)]
        constraints.append(make_constraint(match.group(1), args))
    return Parameter(name, tuple(constraints), optional or default is not None, default, catch_all)


def _read_parameter(segment: str, start: int, template: str) -> tuple[str, int]:
    """The body of the parameter opening at `start` (`{{`/`}}` unescaped) and the index after it."""
    body: list[str] = []
    i = start + 1
    while i < len(segment):
        if segment.startswith("}}", i) or segment.startswith("{{", i):
            body.append(segment[i])
            i += 2
        elif segment[i] == "}":
            return "".join(body), i + 1
        else:
            body.append(segment[i])
            i += 1
    raise RouteTemplateError(f"unclosed '{{' in route template {template!r}")


def _parse_segment(segment: str, template: str) -> list[Part]:
    parts: list[Part] = []
    literal: list[str] = []
    i = 0
    while i < len(segment):
        if segment.startswith("{{", i) or segment.startswith("}}", i):
            literal.append(segment[i])
            i += 2
            continue
        if segment[i] == "}":
            raise RouteTemplateError(f"unmatched '}}' in route template {template!r}")
        if segment[i] != "{":
            literal.append(segment[i])
            i += 1
            continue
        body, i = _read_parameter(segment, i, template)
        if literal:
            parts.append("".join(literal))
            literal = []
        if parts and isinstance(parts[-1], Parameter):
            raise RouteTemplateError(
                f"two parameters must be separated by a literal in {template!r} (segment {segment!r})"
            )
        parts.append(_parse_parameter(body, template))
    if literal:
        parts.append("".join(literal))
    return parts


class RouteTemplate:
    """One compiled route template (without the `api/` prefix)."""

    def __init__(self, template: str) -> None:
        self.template = template
        text = template.strip()
        if text.startswith("~/"):
            text = text[2:]
        text = text.strip("/")
        if "?" in text and not re.search(r"\{[^}]*\?[^}]*\}", text):
            raise RouteTemplateError(f"route template {template!r} must not contain '?' outside a parameter")
        segments = [] if text == "" else text.split("/")
        if any(s == "" for s in segments):
            raise RouteTemplateError(f"route template {template!r} has an empty segment")
        self.segments: list[list[Part]] = [_parse_segment(s, template) for s in segments]
        self.parameters: list[Parameter] = [
            p for seg in self.segments for p in seg if isinstance(p, Parameter)
        ]
        names = [p.name.lower() for p in self.parameters]
        if len(names) != len(set(names)):
            raise RouteTemplateError(f"route template {template!r} repeats a parameter name")
        self._check_shape()
        self._groups: dict[str, Parameter] = {}
        self._regex = re.compile("^" + self._build_regex() + "$", re.DOTALL)
        self.precedence = tuple(self._segment_precedence(seg) for seg in self.segments)

    def _check_shape(self) -> None:
        seen_optional = False
        for index, seg in enumerate(self.segments):
            params = [p for p in seg if isinstance(p, Parameter)]
            for p in params:
                if p.catch_all and (index != len(self.segments) - 1 or len(seg) != 1):
                    raise RouteTemplateError(
                        f"a catch-all parameter must be the whole last segment in {self.template!r}"
                    )
                if p.optional and len(seg) != 1 and p is not seg[-1]:
                    raise RouteTemplateError(
                        f"an optional parameter must be at the end of its segment in {self.template!r}"
                    )
            whole_optional = len(seg) == 1 and isinstance(seg[0], Parameter) and seg[0].optional
            if (
                seen_optional
                and not whole_optional
                and not (len(seg) == 1 and params and params[0].catch_all)
            ):
                raise RouteTemplateError(
                    f"only optional segments may follow an optional one in {self.template!r}"
                )
            seen_optional = seen_optional or whole_optional

    def _group(self, param: Parameter) -> str:
        name = f"p{len(self._groups)}"
        self._groups[name] = param
        return name

    def _build_regex(self) -> str:
        out: list[str] = []
        for index, seg in enumerate(self.segments):
            sep = "/" if index else ""
            single = seg[0] if len(seg) == 1 and isinstance(seg[0], Parameter) else None
            if single is not None and single.catch_all:
                out.append(
                    f"(?:{sep}(?P<{self._group(single)}>.*))?" if index else f"(?P<{self._group(single)}>.*)"
                )
                continue
            if single is not None and single.optional:
                out.append(f"(?:{sep}(?P<{self._group(single)}>[^/]+))?")
                continue
            body: list[str] = []
            for pos, part in enumerate(seg):
                if isinstance(part, str):
                    body.append(f"(?i:{re.escape(part)})")
                    continue
                # Complex segments match right to left in ASP.NET: greedy parts, except before an
                # optional last part (`{name}.{ext?}`: "a.b.c" gives name "a.b", ext "c").
                last_optional = isinstance(seg[-1], Parameter) and seg[-1].optional and part is not seg[-1]
                chars = "[^/.]" if part.optional and pos > 0 and str(seg[pos - 1]).endswith(".") else "[^/]"
                piece = f"(?P<{self._group(part)}>{chars}+{'?' if last_optional else ''})"
                if part.optional:  # the literal before an optional part goes with it
                    previous = body.pop() if body else ""
                    piece = f"(?:{previous}{piece})?"
                body.append(piece)
            out.append(sep + "".join(body))
        return "".join(out)

    @staticmethod
    def _segment_precedence(seg: Sequence[Part]) -> int:
        if len(seg) > 1:
            return _COMPLEX
        part = seg[0]
        if isinstance(part, str):
            return _LITERAL
        if part.catch_all:
            return _CATCH_ALL
        return _CONSTRAINED if part.constraints else _PARAMETER

    def match(self, raw_path: str) -> dict[str, str] | None:
        """Match a path (percent-encoded, without the route prefix); route values, or None."""
        found = self._regex.match(raw_path.strip("/"))
        if found is None:
            return None
        values: dict[str, str] = {}
        for group, param in self._groups.items():
            raw = found.group(group)
            if raw is None or raw == "":
                if not (param.optional or param.catch_all):
                    return None
                if param.default is not None:
                    values[param.name] = param.default
                continue
            value = unquote(raw)
            if not param.accepts(value):
                return None
            values[param.name] = value
        return values

    def __repr__(self) -> str:
        return f"RouteTemplate({self.template!r})"


@dataclass(frozen=True)
class RouteMatch(Generic[T]):
    target: T
    route_values: Mapping[str, str]


@dataclass(frozen=True)
class MethodNotAllowed:
    allowed: frozenset[str]


@dataclass
class RouteTable(Generic[T]):
    """Templates with their methods (None: any method), in precedence order."""

    _entries: list[tuple[RouteTemplate, frozenset[str] | None, T]] = field(default_factory=list)

    def add(self, template: RouteTemplate, methods: Iterable[str] | None, target: T) -> None:
        method_set = None if methods is None else frozenset(m.upper() for m in methods)
        self._entries.append((template, method_set, target))
        self._entries.sort(key=lambda entry: entry[0].precedence)

    def match(self, method: str, raw_path: str) -> RouteMatch[T] | MethodNotAllowed | None:
        """The target for this method and path; MethodNotAllowed if only other methods match; else None."""
        allowed: set[str] = set()
        for template, methods, target in self._entries:
            values = template.match(raw_path)
            if values is None:
                continue
            if methods is None or method.upper() in methods:
                return RouteMatch(target, values)
            allowed |= methods
        return MethodNotAllowed(frozenset(allowed)) if allowed else None
