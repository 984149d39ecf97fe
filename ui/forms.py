"""HTML forms generated from a plugin's pydantic settings model, and its errors in the user's language.

Field types become inputs: ``bool`` a checkbox, ``int``/``float``/``Decimal`` a number, ``Enum`` and
``Literal`` a select, ``SecretStr`` a write-only password input (the form shows only whether it is set),
lists a textarea with one value per line, anything else structured a JSON textarea, the rest text.
"""

from __future__ import annotations

import enum
import json
import types
import typing
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from annotated_types import Ge, Gt, Le, Lt
from pydantic import BaseModel, SecretStr, ValidationError
from pydantic.fields import FieldInfo

from plugin_sdk.errors import FieldError
from ui import i18n
from ui.i18n import _

FORM_ERRORS = "__all__"


@dataclass
class FormField:
    name: str
    label: str
    help: str
    kind: str  # text, number, checkbox, select, password, textarea, list, json, email, url
    value: str = ""
    checked: bool = False
    required: bool = False
    options: list[tuple[str, str]] = field(default_factory=list)
    secret_set: bool = False
    step: str | None = None
    min: str | None = None
    max: str | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"setting-{self.name}"


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """(the inner type, whether None is allowed) for ``X | None``, ``Optional[X]`` and ``Annotated[X, ...]``."""
    optional = False
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
            continue
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            optional = optional or len(args) < len(typing.get_args(annotation))
            if len(args) == 1:
                annotation = args[0]
                continue
        return annotation, optional


def _kind(annotation: Any) -> tuple[str, list[tuple[str, str]]]:
    inner, _optional = _unwrap(annotation)
    origin = typing.get_origin(inner)
    if inner is SecretStr:
        return "password", []
    if inner is bool:
        return "checkbox", []
    if inner in (int, float, Decimal):
        return "number", []
    if isinstance(inner, type) and issubclass(inner, enum.Enum):
        return "select", [(str(m.value), str(m.value)) for m in inner]
    if origin is typing.Literal:
        return "select", [(str(v), str(v)) for v in typing.get_args(inner)]
    if origin in (list, tuple, set, frozenset) and all(a in (str, Ellipsis) for a in typing.get_args(inner)):
        return "list", []
    if origin in (list, tuple, set, frozenset, dict) or (isinstance(inner, type) and issubclass(inner, BaseModel)):
        return "json", []
    name = getattr(inner, "__name__", "")
    if name in ("EmailStr", "NameEmail"):
        return "email", []
    if "Url" in name:
        return "url", []
    return "text", []


def _display(kind: str, value: Any) -> str:
    if value is None:
        return ""
    if kind == "list":
        return "\n".join(str(v) for v in value)
    if kind == "json":
        return json.dumps(value, ensure_ascii=False, indent=2, default=str)
    if isinstance(value, enum.Enum):
        return str(value.value)
    return str(value)


def _limits(info: FieldInfo) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in info.metadata:
        if isinstance(item, Ge):
            out["min"] = str(item.ge)
        elif isinstance(item, Gt):
            out["min"] = str(item.gt)
        elif isinstance(item, Le):
            out["max"] = str(item.le)
        elif isinstance(item, Lt):
            out["max"] = str(item.lt)
    return out


def fields_for(plugin: str, model: type[BaseModel], values: dict[str, Any],
               errors: dict[str, list[str]] | None = None) -> list[FormField]:
    """The form fields of ``model``; ``values`` is the public view (secrets as ``{"set": bool}``) or a submission."""
    out = []
    for name, info in model.model_fields.items():
        kind, options = _kind(info.annotation)
        _inner, optional = _unwrap(info.annotation)
        title = info.title or name.replace("_", " ").capitalize()
        form_field = FormField(
            name=name, label=i18n.plugin_text(plugin, title), help=i18n.plugin_text(plugin, info.description or ""),
            kind=kind, options=options, required=info.is_required() and not optional,
            errors=(errors or {}).get(name, []),
        )
        if kind == "number":
            inner = _unwrap(info.annotation)[0]
            form_field.step = "1" if inner is int else "any"
            limits = _limits(info)
            form_field.min, form_field.max = limits.get("min"), limits.get("max")
        if name in values:
            value = values[name]
        elif not info.is_required():
            value = info.get_default(call_default_factory=True)
        else:
            value = None
        if kind == "password":
            form_field.secret_set = bool(value.get("set")) if isinstance(value, dict) else bool(value)
        elif kind == "checkbox":
            form_field.checked = value in (True, "true", "on", "1")
        else:
            form_field.value = _display(kind, value)
        out.append(form_field)
    return out


def parse_submission(model: type[BaseModel], form: Any) -> dict[str, Any]:
    """Turn posted form values into the dict ``PluginService.validate_settings`` expects.

    Blank optional fields become None, blank secrets mean "keep the stored one", numbers and JSON that do
    not parse are passed on as text so the schema reports them against their field.
    """
    submitted: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        kind, _options = _kind(info.annotation)
        _inner, optional = _unwrap(info.annotation)
        if kind == "checkbox":
            submitted[name] = "true" in form.getlist(name) or "on" in form.getlist(name)
            continue
        raw = form.get(name)
        if raw is None:
            continue
        text = str(raw)
        if kind == "password":
            if text:
                submitted[name] = text
            continue
        stripped = text.strip()
        if stripped == "" and optional:
            submitted[name] = None
        elif kind == "list":
            submitted[name] = [line.strip() for line in text.splitlines() if line.strip()]
        elif kind == "json":
            try:
                submitted[name] = json.loads(stripped) if stripped else None
            except ValueError:
                submitted[name] = stripped
        elif kind == "number":
            submitted[name] = stripped
        else:
            submitted[name] = text
    return submitted


def submitted_view(model: type[BaseModel], submitted: dict[str, Any], stored: dict[str, Any]) -> dict[str, Any]:
    """Values to show again after a refused submission: what was typed, and the stored secrets' state."""
    view = {k: v for k, v in submitted.items()}
    for name, info in model.model_fields.items():
        if _kind(info.annotation)[0] == "password":
            view[name] = stored.get(name, {"set": False})
    return view


# --- errors ----------------------------------------------------------------------------------------------


def _number(value: Any) -> str:
    return i18n.format_number(value) if isinstance(value, (int, float, Decimal)) else str(value)


def _message(error_type: str, ctx: dict[str, Any], fallback: str) -> str:
    """A pydantic error in the user's language; the original text when there is no better one."""
    if error_type == "missing":
        return _("This field is required.")
    if error_type in ("string_too_short", "too_short"):
        n = int(ctx.get("min_length", 1))
        return i18n.ngettext("Enter at least %(num)d character.", "Enter at least %(num)d characters.", n) % {"num": n}
    if error_type in ("string_too_long", "too_long"):
        n = int(ctx.get("max_length", 1))
        return i18n.ngettext("Enter at most %(num)d character.", "Enter at most %(num)d characters.", n) % {"num": n}
    if error_type == "string_pattern_mismatch":
        return _("The value is not in the expected format.")
    if error_type in ("int_parsing", "int_type", "int_from_float"):
        return _("Enter a whole number.")
    if error_type in ("float_parsing", "float_type", "decimal_parsing", "decimal_type"):
        return _("Enter a number.")
    if error_type == "greater_than_equal":
        return _("Enter a number no less than %(limit)s.") % {"limit": _number(ctx.get("ge"))}
    if error_type == "greater_than":
        return _("Enter a number greater than %(limit)s.") % {"limit": _number(ctx.get("gt"))}
    if error_type == "less_than_equal":
        return _("Enter a number no greater than %(limit)s.") % {"limit": _number(ctx.get("le"))}
    if error_type == "less_than":
        return _("Enter a number less than %(limit)s.") % {"limit": _number(ctx.get("lt"))}
    if error_type in ("bool_parsing", "bool_type"):
        return _("Choose yes or no.")
    if error_type.startswith("url_"):
        return _("Enter a valid web address.")
    if error_type in ("enum", "literal_error"):
        return _("Choose one of the offered values.")
    if error_type in ("json_invalid", "list_type", "dict_type", "model_type", "tuple_type", "set_type"):
        return _("Enter the value in the expected structure.")
    if error_type == "unknown_field":
        return _("This setting does not exist.")
    if error_type == "string_type":
        return _("Enter text.")
    return fallback


def error_map(exc: Exception) -> dict[str, list[str]]:
    """Errors of a ``SettingsInvalid`` by field name (``__all__`` for the form), translated where known.

    The schema's errors are re-read from the underlying ``ValidationError`` (kept as ``__cause__``),
    which still has the limits (``ge``, ``max_length`` ...) needed for a message in the user's language.
    Errors a plugin's ``praxis_validate_settings`` returns are shown as the plugin wrote them.
    """
    out: dict[str, list[str]] = {}
    cause = exc.__cause__
    if isinstance(cause, ValidationError):
        for error in cause.errors():
            loc = [str(p) for p in error["loc"]]
            name = loc[0] if loc else FORM_ERRORS
            out.setdefault(name, []).append(_message(error["type"], dict(error.get("ctx") or {}), error["msg"]))
        return out
    for item in getattr(exc, "errors", []):
        if not isinstance(item, FieldError):
            continue
        name = item.field.split(".")[0] if item.field else FORM_ERRORS
        out.setdefault(name, []).append(_message(item.code, {}, item.message))
    return out
