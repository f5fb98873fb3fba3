"""Indexing: import `function_app.py` and read `app.get_functions()` the way the Python worker does.

The worker (azure-functions-python-worker `loader.index_function_app`): validates the script file
name (`PYTHON_SCRIPT_FILE_NAME`, default `function_app.py`, no slashes), imports it with the app
root on `sys.path`, takes the one `FunctionRegister` instance among the module globals and calls
`get_functions()` once. What the host then sees is each binding's JSON (`get_raw_bindings()`), which
is what this module reads, after resolving `%NAME%` expressions from app settings.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Final, Literal

import azure.functions as func

from devhost.routing import RouteTemplate, RouteTemplateError
from devhost.settings import ConfigError, resolve_expression

SCRIPT_FILE_SETTING: Final = "PYTHON_SCRIPT_FILE_NAME"
DEFAULT_SCRIPT_FILE: Final = "function_app.py"
_SCRIPT_FILE_NAME: Final = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9_\-]*\.py$")
_QUEUE_NAME: Final = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?!-))*[a-z0-9]$")
RESERVED_ROUTE_MESSAGE: Final = "The specified route conflicts with one or more built in routes."
RETURN_BINDING: Final = "$return"
CONTEXT_PARAMETER: Final = "context"

AuthLevel = Literal["anonymous", "function", "admin"]
TriggerKind = Literal["http", "timer", "queue"]


class IndexingError(ConfigError):
    """The function app cannot be loaded or uses something the local host does not support."""


@dataclass(frozen=True)
class HttpTriggerSpec:
    arg_name: str
    route: RouteTemplate
    methods: frozenset[str] | None  # None: every method
    auth_level: AuthLevel
    kind: TriggerKind = "http"


@dataclass(frozen=True)
class TimerTriggerSpec:
    arg_name: str
    schedule: str
    run_on_startup: bool
    use_monitor: bool
    kind: TriggerKind = "timer"


@dataclass(frozen=True)
class QueueTriggerSpec:
    arg_name: str
    queue_name: str
    connection: str
    kind: TriggerKind = "queue"


TriggerSpec = HttpTriggerSpec | TimerTriggerSpec | QueueTriggerSpec


@dataclass(frozen=True)
class OutputSpec:
    """An output binding: `http` (the response) or `queue`."""

    name: str  # the parameter name, or "$return"
    kind: Literal["http", "queue"]
    queue_name: str = ""
    connection: str = ""


@dataclass(frozen=True)
class IndexedFunction:
    name: str
    trigger: TriggerSpec
    outputs: tuple[OutputSpec, ...]
    user_function: Callable[..., Any]
    is_async: bool
    wants_context: bool
    trigger_annotation: Any
    function_directory: str
    retry_policy: Mapping[str, Any] | None

    @property
    def return_binding(self) -> OutputSpec | None:
        return next((o for o in self.outputs if o.name == RETURN_BINDING), None)

    @property
    def out_parameters(self) -> tuple[OutputSpec, ...]:
        return tuple(o for o in self.outputs if o.name != RETURN_BINDING)

    def describe(self) -> dict[str, Any]:
        """A JSON-able summary (the ready line and `GET /admin/functions`)."""
        trigger = self.trigger
        info: dict[str, Any] = {"name": self.name, "trigger": trigger.kind}
        if isinstance(trigger, HttpTriggerSpec):
            info |= {
                "route": trigger.route.template,
                "methods": sorted(trigger.methods) if trigger.methods else None,
                "auth_level": trigger.auth_level,
            }
        elif isinstance(trigger, TimerTriggerSpec):
            info |= {"schedule": trigger.schedule, "run_on_startup": trigger.run_on_startup}
        else:
            info |= {"queue": trigger.queue_name, "connection": trigger.connection}
        info["outputs"] = [
            {"name": o.name, "type": o.kind} | ({"queue": o.queue_name} if o.kind == "queue" else {})
            for o in self.outputs
        ]
        return info


def script_file_name(settings: Mapping[str, str]) -> str:
    name = settings.get(SCRIPT_FILE_SETTING, DEFAULT_SCRIPT_FILE)
    if not _SCRIPT_FILE_NAME.match(name):
        raise IndexingError(
            f"Invalid file name: {name}. {SCRIPT_FILE_SETTING} must be a .py file at the app root "
            f"matching {_SCRIPT_FILE_NAME.pattern} (no folders)"
        )
    return name


def import_app(app_root: Path, settings: Mapping[str, str]) -> tuple[ModuleType, func.FunctionRegister]:
    """Import the script file like the worker and return its one FunctionRegister instance."""
    file_name = script_file_name(settings)
    script = app_root / file_name
    if not script.is_file():
        raise IndexingError(f"{file_name} not found in the app root {app_root}")
    root = str(app_root)
    if root not in sys.path:
        sys.path.insert(0, root)
    module_name = file_name.removesuffix(".py")
    loaded = sys.modules.get(module_name)
    if loaded is not None and Path(getattr(loaded, "__file__", "") or "").resolve() != script.resolve():
        raise IndexingError(
            f"a different module named {module_name!r} is already imported ({loaded.__file__}); "
            "run the app in its own process (python -m devhost)"
        )
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # the app's own import error: report it as the worker does
        raise IndexingError(f"{file_name} failed to import: {type(exc).__name__}: {exc}") from exc
    apps = [v for v in vars(module).values() if isinstance(v, func.FunctionRegister)]
    if len(apps) > 1:
        raise IndexingError(
            f"More than one {type(apps[0]).__name__} or other top level function app instances are defined "
            f"in {file_name}"
        )
    if not apps:
        raise IndexingError(f"Could not find top level function app instances in {file_name}.")
    return module, apps[0]


def index_app(app_root: Path, settings: Mapping[str, str]) -> list[IndexedFunction]:
    """Import the app and index its functions (calls `get_functions()` exactly once)."""
    _, app = import_app(app_root, settings)
    functions = app.get_functions()
    return [index_function(fn, app_root, settings) for fn in functions]


def _auth_level(value: Any) -> AuthLevel:
    text = str(getattr(value, "value", value) or "function").lower()
    if text not in {"anonymous", "function", "admin"}:
        raise IndexingError(f"unknown auth level {value!r}")
    return text  # type: ignore[return-value]


def _queue_name(raw: str, settings: Mapping[str, str], what: str) -> str:
    name = resolve_expression(raw, settings, what=what).lower()
    if not 3 <= len(name) <= 63 or not _QUEUE_NAME.match(name):
        raise IndexingError(
            f"{what}: invalid queue name {name!r} (3-63 lowercase letters, digits and single hyphens)"
        )
    return name


def _trigger_spec(name: str, raw: Mapping[str, Any], settings: Mapping[str, str]) -> TriggerSpec:
    kind = raw.get("type")
    arg = str(raw["name"])
    if kind == "httpTrigger":
        route_text = str(raw.get("route") or name)
        if route_text.lower().startswith("admin"):
            raise IndexingError(f"function {name}: route {route_text!r}: {RESERVED_ROUTE_MESSAGE}")
        try:
            route = RouteTemplate(route_text)
        except RouteTemplateError as exc:
            raise IndexingError(f"function {name}: {exc}") from exc
        methods_raw: Sequence[str] | None = raw.get("methods")
        methods = frozenset(m.upper() for m in methods_raw) if methods_raw else None
        return HttpTriggerSpec(arg, route, methods, _auth_level(raw.get("authLevel")))
    if kind == "timerTrigger":
        schedule = resolve_expression(str(raw["schedule"]), settings, what=f"function {name} schedule")
        return TimerTriggerSpec(
            arg,
            schedule,
            run_on_startup=bool(raw.get("runOnStartup", False)),
            use_monitor=bool(raw.get("useMonitor", True)),
        )
    if kind == "queueTrigger":
        return QueueTriggerSpec(
            arg,
            _queue_name(str(raw["queueName"]), settings, f"function {name} queue trigger"),
            str(raw.get("connection") or "AzureWebJobsStorage"),
        )
    raise IndexingError(
        f"function {name}: trigger type {kind!r} is not supported by the local host "
        "(supported: httpTrigger, timerTrigger, queueTrigger)"
    )


def _output_spec(name: str, raw: Mapping[str, Any], settings: Mapping[str, str]) -> OutputSpec:
    kind = raw.get("type")
    arg = str(raw["name"])
    if kind == "http":
        return OutputSpec(arg, "http")
    if kind == "queue":
        return OutputSpec(
            arg,
            "queue",
            _queue_name(str(raw["queueName"]), settings, f"function {name} queue output {arg}"),
            str(raw.get("connection") or "AzureWebJobsStorage"),
        )
    raise IndexingError(
        f"function {name}: output binding {arg!r} of type {kind!r} is not supported by the local host "
        "(supported: http, queue)"
    )


def index_function(fn: func.Function, app_root: Path, settings: Mapping[str, str]) -> IndexedFunction:
    name = str(fn.get_function_name())
    raw_bindings = [json.loads(b) for b in fn.get_raw_bindings()]
    trigger_raw = [b for b in raw_bindings if str(b.get("type", "")).endswith("Trigger")]
    if len(trigger_raw) != 1:
        raise IndexingError(f"function {name} must have exactly one trigger")
    trigger = _trigger_spec(name, trigger_raw[0], settings)
    outputs: list[OutputSpec] = []
    for raw in raw_bindings:
        if raw is trigger_raw[0]:
            continue
        if str(raw.get("direction", "")).upper() != "OUT":
            raise IndexingError(
                f"function {name}: input binding {raw.get('name')!r} of type {raw.get('type')!r} "
                "is not supported by the local host"
            )
        outputs.append(_output_spec(name, raw, settings))
    if isinstance(trigger, HttpTriggerSpec) and not any(o.kind == "http" for o in outputs):
        raise IndexingError(f"function {name}: an HTTP trigger needs an HTTP output binding")

    user_function = fn.get_user_function()
    signature = inspect.signature(user_function)
    params = set(signature.parameters)
    binding_names = {trigger.arg_name} | {o.name for o in outputs if o.name != RETURN_BINDING}
    undeclared = params - binding_names - {CONTEXT_PARAMETER}
    if undeclared:
        raise IndexingError(
            f"function {name}: the following parameters are declared in Python but not in the bindings: "
            f"{sorted(undeclared)}"
        )
    missing = binding_names - params
    if missing:
        raise IndexingError(
            f"function {name}: the following bindings have no parameter in the Python function: "
            f"{sorted(missing)}"
        )
    trigger_param = signature.parameters[trigger.arg_name]
    return IndexedFunction(
        name=name,
        trigger=trigger,
        outputs=tuple(outputs),
        user_function=user_function,
        is_async=inspect.iscoroutinefunction(user_function),
        wants_context=CONTEXT_PARAMETER in params and CONTEXT_PARAMETER not in binding_names,
        trigger_annotation=trigger_param.annotation,
        function_directory=str(app_root),
        retry_policy=fn.get_settings_dict("retry_policy"),
    )
