"""Reading infra/ for the infra tests: Bicep through pycep, plus azure.yaml and .funcignore.

There is no Bicep compiler offline, so these helpers read the parse tree pycep gives. In that tree an
identifier and a string literal look the same (`"value": "identityClientId"`); `resolve` looks a name up
among the file's parameters, which is all the tests need.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

from pycep import BicepParser

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
MAIN = INFRA / "main.bicep"
API = INFRA / "app" / "api.bicep"
RBAC = INFRA / "app" / "rbac.bicep"
KEYVAULT = INFRA / "core" / "security" / "keyvault.bicep"
STORAGE = INFRA / "core" / "storage" / "storage.bicep"
PARAMETERS = INFRA / "main.parameters.json"
AZURE_YAML = ROOT / "azure.yaml"
FUNCIGNORE = ROOT / ".funcignore"


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


@functools.cache
def parse(path: Path) -> dict[str, Any]:
    """pycep's tree of one file; raises (with line and column) on a syntax error."""
    return BicepParser(add_line_numbers=False).parse(text=path.read_text(encoding="utf-8"))


def resources(path: Path, resource_type: str) -> list[dict[str, Any]]:
    """The `config` of every non-`existing` resource of that type declared in the file."""
    return [
        resource["config"]
        for resource in parse(path).get("resources", {}).values()
        if resource["type"].lower() == resource_type.lower() and not resource.get("existing")
    ]


def one_resource(path: Path, resource_type: str) -> dict[str, Any]:
    found = resources(path, resource_type)
    assert len(found) == 1, f"{path.relative_to(ROOT)}: expected one {resource_type}, found {len(found)}"
    return found[0]


def resolve(path: Path, value: Any) -> Any:
    """A parameter name becomes the parameter's default; anything else is returned as it is."""
    params = parse(path).get("parameters", {})
    if isinstance(value, str) and value in params:
        return params[value]["default"]
    return value


def _app_setting_parts(path: Path) -> list[Any]:
    """What `siteConfig.appSettings` is made of: a list, or `concat(...)` of variables (a literal list, or
    `flatten` of a variable looping over `storageShards`), each as its parse tree."""
    site = one_resource(path, "Microsoft.Web/sites")
    value = site["properties"]["siteConfig"]["appSettings"]
    if isinstance(value, list):
        return [value]
    variables = parse(path).get("variables", {})
    assert value["function"]["type"] == "concat", value
    parts = []
    for argument in value["function"]["parameters"].values():
        name = argument
        if isinstance(argument, dict):  # flatten(<variable>)
            assert argument["function"]["type"] == "flatten", argument
            name = argument["function"]["parameters"]["array_to_flattern"]
        parts.append(variables[name]["value"])
    return parts


def _value(expression: Any) -> Any:
    """A setting's value expression; `shard.x` (a property of the loop's item) as that text."""
    if isinstance(expression, dict) and "operator" in expression:
        operands = expression["operator"]["operands"]
        return f"{operands['operand_1']}.{operands['operand_2']}"
    return expression


def site_app_settings(path: Path = API) -> dict[str, Any]:
    """The function app's app settings set whatever the parameters (`siteConfig.appSettings`, its literal
    lists), name -> value expression."""
    return {
        entry["name"]: entry["value"]
        for part in _app_setting_parts(path)
        if isinstance(part, list)
        for entry in part
    }


def shard_app_settings(path: Path = API) -> dict[str, Any]:
    """The settings each storage shard adds (the loop over `storageShards` in appSettings), name (with
    `${shard.name}`) -> value expression."""
    found: dict[str, Any] = {}
    for part in _app_setting_parts(path):
        if isinstance(part, list):
            continue
        assert part["loop_type"]["detail"] == {"item_name": "shard", "array_name": "storageShards"}, part
        found.update({entry["name"]: _value(entry["value"]) for entry in part["config"]})
    return found


def walk_keys(tree: Any) -> set[str]:
    """Every object key anywhere in a parse tree."""
    keys: set[str] = set()
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            keys.update(str(key) for key in node)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return keys


def azure_yaml_services() -> dict[str, dict[str, str]]:
    """`services:` of azure.yaml as {name: {key: value}}, in the flat shape used here (no YAML library)."""
    services: dict[str, dict[str, str]] = {}
    in_services = False
    current: dict[str, str] | None = None
    for raw in AZURE_YAML.read_text(encoding="utf-8").splitlines():
        line = raw.split(" #", 1)[0].rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        if indent == 0:
            in_services = line == "services:"
            continue
        if not in_services:
            continue
        key, _, value = line.strip().partition(":")
        if indent == 2:
            current = services.setdefault(key, {})
        elif indent == 4 and current is not None:
            current[key] = value.strip().strip("'\"")
    return services


GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
