"""Route templates as the Functions host (ASP.NET Core routing) matches them."""

from __future__ import annotations

import pytest

from devhost.routing import MethodNotAllowed, RouteMatch, RouteTable, RouteTemplate, RouteTemplateError

pytestmark = pytest.mark.unit

GUID = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"


@pytest.mark.parametrize(
    ("template", "path", "expected"),
    [
        ("tenants", "tenants", {}),
        ("tenants", "TENANTS", {}),  # literals match case-insensitively
        ("tenants", "tenants/", {}),
        ("tenants", "tenant", None),
        ("tenants/{tid}", "tenants/abc", {"tid": "abc"}),
        ("tenants/{tid}", "tenants/a%20b", {"tid": "a b"}),  # values are decoded
        ("tenants/{tid}", "tenants/a%2Fb", {"tid": "a/b"}),  # %2F stays inside the segment
        ("tenants/{tid}", "tenants", None),
        ("tenants/{tid}", "tenants/a/b", None),
        ("items/{id:int}", "items/42", {"id": "42"}),
        ("items/{id:int}", "items/-7", {"id": "-7"}),
        ("items/{id:int}", "items/4x", None),
        ("items/{id:int}", "items/99999999999", None),  # beyond Int32
        ("items/{id:long}", "items/99999999999", {"id": "99999999999"}),
        ("u/{id:guid}", f"u/{GUID}", {"id": GUID}),
        ("u/{id:guid}", f"u/{GUID.upper()}", {"id": GUID.upper()}),
        ("u/{id:guid}", "u/not-a-guid", None),
        ("n/{name:alpha}", "n/Alice", {"name": "Alice"}),
        ("n/{name:alpha}", "n/Alice1", None),
        ("n/{name:length(2,3)}", "n/abc", {"name": "abc"}),
        ("n/{name:length(2,3)}", "n/abcd", None),
        ("n/{name:minlength(2):maxlength(3)}", "n/a", None),
        ("n/{v:range(1,5)}", "n/5", {"v": "5"}),
        ("n/{v:range(1,5)}", "n/6", None),
        ("n/{v:min(10)}", "n/9", None),
        ("n/{v:bool}", "n/True", {"v": "True"}),
        ("n/{code:regex(^\\d{{3}}$)}", "n/123", {"code": "123"}),
        ("n/{code:regex(^\\d{{3}}$)}", "n/1234", None),
        ("opt/{a?}", "opt", {}),
        ("opt/{a?}", "opt/1", {"a": "1"}),
        ("opt/{a?}/{b?}", "opt/1/2", {"a": "1", "b": "2"}),
        ("def/{a=hello}", "def", {"a": "hello"}),
        ("def/{a=hello}", "def/world", {"a": "world"}),
        ("files/{*rest}", "files", {}),
        ("files/{*rest}", "files/a/b/c.txt", {"rest": "a/b/c.txt"}),
        ("files/{**rest}", "files/a/b", {"rest": "a/b"}),
        ("f/{name}.{ext}", "f/report.pdf", {"name": "report", "ext": "pdf"}),
        ("f/{name}.{ext}", "f/a.b.c", {"name": "a.b", "ext": "c"}),
        ("f/{name}.{ext?}", "f/readme", {"name": "readme"}),
        ("f/{name}.{ext?}", "f/a.b.c", {"name": "a.b", "ext": "c"}),
        ("{*all}", "anything/at/all", {"all": "anything/at/all"}),
    ],
)
def test_template_matches_like_the_host(template: str, path: str, expected: dict[str, str] | None) -> None:
    assert RouteTemplate(template).match(path) == expected


@pytest.mark.parametrize(
    "template",
    [
        "a/{id:nosuch}",
        "a/{id",
        "a/id}",
        "a/{*rest}/b",
        "a/{a}{b}",
        "a/{x}/{X}",
        "a//b",
        "a/{opt?}/b",
        "a/{n:length(x)}",
    ],
)
def test_malformed_templates_are_refused(template: str) -> None:
    with pytest.raises(RouteTemplateError):
        RouteTemplate(template)


def test_the_most_specific_route_wins() -> None:
    table: RouteTable[str] = RouteTable()
    table.add(RouteTemplate("items/{*rest}"), None, "catch-all")
    table.add(RouteTemplate("items/{id}"), None, "plain")
    table.add(RouteTemplate("items/{id:int}"), None, "int")
    table.add(RouteTemplate("items/new"), None, "literal")

    def target(path: str) -> str | None:
        found = table.match("GET", path)
        return found.target if isinstance(found, RouteMatch) else None

    assert target("items/new") == "literal"
    assert target("items/7") == "int"
    assert target("items/x") == "plain"
    assert target("items/x/y") == "catch-all"


def test_method_mismatch_is_reported_with_the_allowed_methods() -> None:
    table: RouteTable[str] = RouteTable()
    table.add(RouteTemplate("tenants/{tid}"), ["GET"], "get")
    table.add(RouteTemplate("tenants/{tid}"), ["delete"], "delete")
    found = table.match("PATCH", "tenants/a")
    assert found == MethodNotAllowed(frozenset({"GET", "DELETE"}))
    deleted = table.match("DELETE", "tenants/a")
    assert isinstance(deleted, RouteMatch) and deleted.target == "delete"
    assert table.match("GET", "nothing") is None


def test_route_without_methods_takes_every_method() -> None:
    table: RouteTable[str] = RouteTable()
    table.add(RouteTemplate("any"), None, "any")
    assert isinstance(table.match("PURGE", "any"), RouteMatch)
