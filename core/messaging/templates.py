"""Message templates: typed placeholders, validation when a template is saved, rendering, preview.

A template body is text with ``{placeholder}`` fields (``{{`` and ``}}`` for literal braces). Only the names
known in the clinic are allowed; anything else (an unknown name, a format spec, attribute access) is refused
when the template is saved, so a patient never receives a blank or a ``{typo}``. Each placeholder says which
rule kinds can fill it: ``{time}`` needs an appointment, so a birthday rule may not use a template with it.

The core's placeholders are registered here (``register``); plugins add theirs through the
``praxis_placeholders`` hook (``core.messaging.placeholders``), usable only in clinics where the plugin is
enabled. A resolver returns the text for one message, given a ``RenderContext``; a placeholder that cannot be
filled raises ``RenderError`` with a readable reason, and the message fails with it instead of going out
with a blank.
"""

from __future__ import annotations

import string
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_time

from core.clock import now as ctx_now
from plugin_sdk.errors import FieldError, ValidationFailed

APPOINTMENT = "appointment"  # the placeholder needs an appointment
ANY = "any"


@dataclass
class RenderContext:
    """What a message is about. ``None`` where the rule kind has no such thing (a birthday has no doctor)."""

    language: str
    timezone: str
    clinic_id: int = 0
    clinic_name: str = ""
    clinic_address: str = ""
    clinic_phone: str = ""
    patient_given_name: str = ""
    patient_family_name: str = ""
    recipient_name: str = ""
    appointment_start: datetime | None = None
    doctor_name: str | None = None
    link: str = ""
    data: dict[str, Any] = field(default_factory=dict)  # event data and anything a plugin resolver needs
    kind: str = ""  # the rule's kind or "manual"
    channel: str = ""
    recipient_kind: str = "patient"
    patient_id: str | None = None
    appointment_id: int | None = None
    event: str | None = None

    @property
    def local_start(self) -> datetime | None:
        if self.appointment_start is None:
            return None
        return self.appointment_start.astimezone(ZoneInfo(self.timezone))


@dataclass(frozen=True)
class Placeholder:
    name: str
    description: str
    kind: str  # text, date, time, url
    needs: str  # APPOINTMENT or ANY
    resolve: Callable[[RenderContext], str]
    sample: Callable[[RenderContext], str]
    source: str = "core"


class RenderError(Exception):
    """A text could not be written: ``code`` for machines, the message for people. ``retry_at`` is set when
    it may work later (a plugin paused after failures, or one that said so)."""

    def __init__(self, code: str, reason: str, *, plugin: str | None = None, retry_at: datetime | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.plugin = plugin
        self.retry_at = retry_at
        self.retry_after = retry_after


@dataclass(frozen=True)
class PlaceholderSet:
    """The placeholders usable in one clinic, and the names that exist but are not usable there (with why)."""

    known: Mapping[str, Placeholder]
    unavailable: Mapping[str, str] = field(default_factory=dict)


_lock = threading.Lock()
_registry: dict[str, Placeholder] = {}


def register(placeholder: Placeholder) -> None:
    """Add a placeholder (its name must be a Python identifier and not taken)."""
    if not placeholder.name.isidentifier():
        raise ValueError(f"placeholder name {placeholder.name!r} must be an identifier")
    with _lock:
        existing = _registry.get(placeholder.name)
        if existing is not None and existing != placeholder:
            raise ValueError(f"placeholder {{{placeholder.name}}} is already registered by {existing.source}")
        _registry[placeholder.name] = placeholder


def unregister(name: str) -> None:
    with _lock:
        _registry.pop(name, None)


def placeholders() -> dict[str, Placeholder]:
    with _lock:
        return dict(_registry)


def core_set() -> PlaceholderSet:
    """The core's placeholders alone (no plugin's)."""
    return PlaceholderSet(placeholders())


@lru_cache(maxsize=64)
def _locale(language: str) -> Locale:
    try:
        return Locale.parse((language or "en").replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return Locale.parse("en")


FAMILY_FIRST = frozenset({"hu", "ko", "zh", "ja", "vi"})


def full_name(given: str, family: str, language: str) -> str:
    parts = [family, given] if (language or "").split("-")[0].split("_")[0] in FAMILY_FIRST else [given, family]
    return " ".join(p for p in parts if p).strip()


@lru_cache(maxsize=4096)
def _date_text(day: date, language: str) -> str:
    return format_date(day, format="long", locale=_locale(language))


@lru_cache(maxsize=4096)
def _time_text(at: time, language: str) -> str:
    return format_time(at, format="short", locale=_locale(language))


def _start_date(ctx: RenderContext) -> str:
    local = ctx.local_start
    return _date_text(local.date(), ctx.language) if local else ""


def _start_time(ctx: RenderContext) -> str:
    local = ctx.local_start
    return _time_text(local.time().replace(second=0, microsecond=0), ctx.language) if local else ""


def _sample_date(ctx: RenderContext) -> str:
    return _date_text(date(2026, 3, 14), ctx.language)


def _sample_time(ctx: RenderContext) -> str:
    return _time_text(time(10, 30), ctx.language)


def _core() -> list[Placeholder]:
    return [
        Placeholder("patient_name", "The patient's full name", "text", ANY,
                    lambda c: full_name(c.patient_given_name, c.patient_family_name, c.language),
                    lambda c: full_name("Anna", "Kovács", c.language)),
        Placeholder("given_name", "The patient's given name, for a personal greeting", "text", ANY,
                    lambda c: c.patient_given_name or c.patient_family_name, lambda c: "Anna"),
        Placeholder("recipient_name", "Who receives the message (the patient or a guardian)", "text", ANY,
                    lambda c: c.recipient_name, lambda c: "Kovács Éva"),
        Placeholder("date", "The appointment's date, written in the message's language", "date", APPOINTMENT,
                    _start_date, _sample_date),
        Placeholder("time", "The appointment's start time (clinic time)", "time", APPOINTMENT,
                    _start_time, _sample_time),
        Placeholder("doctor", "The appointment's doctor", "text", APPOINTMENT,
                    lambda c: c.doctor_name or "", lambda c: "Dr. Nagy Péter"),
        Placeholder("clinic", "The clinic's name", "text", ANY, lambda c: c.clinic_name, lambda c: c.clinic_name
                    or "Praxis Dental"),
        Placeholder("address", "The clinic's address", "text", ANY, lambda c: c.clinic_address,
                    lambda c: c.clinic_address or "Budapest, Fő utca 1."),
        Placeholder("clinic_phone", "The clinic's phone number", "text", ANY, lambda c: c.clinic_phone,
                    lambda c: c.clinic_phone or "+36 1 234 5678"),
        Placeholder("link", "The rule's link, or the clinic's messaging link", "url", ANY, lambda c: c.link,
                    lambda c: c.link or "https://example.org/r/abc123"),
    ]


for _placeholder in _core():
    register(_placeholder)


# --- parsing and validation ------------------------------------------------------------------------


@dataclass(frozen=True)
class Field_:
    literal: str
    name: str | None


def parse(text: str) -> list[Field_]:
    """Split ``text`` into literal runs and placeholder names. Raises ValueError for broken braces or fields
    that are more than a plain name (``{a.b}``, ``{a!r}``, ``{a:>5}``, ``{0}``, ``{}``)."""
    out = []
    for literal, name, spec, conversion in string.Formatter().parse(text):
        if name is None:
            out.append(Field_(literal, None))
            continue
        if spec or conversion or not name.isidentifier():
            shown = name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
            raise ValueError(f"{{{shown}}} is not a placeholder: use a plain name such as {{patient_name}}")
        out.append(Field_(literal, name))
    return out


def names_in(text: str) -> list[str]:
    return [f.name for f in parse(text) if f.name is not None]


def check(text: str, field_name: str, *, allowed_needs: Iterable[str] | None = None,
          available: PlaceholderSet | None = None) -> list[FieldError]:
    """Field errors for ``text``: broken braces, unknown placeholders, placeholders of plugins not enabled in
    the clinic (``available``; the core's alone without it), or ones the rule kind cannot fill."""
    try:
        used = names_in(text)
    except ValueError as exc:
        return [FieldError(field_name, str(exc), "invalid_placeholder")]
    available = available or core_set()
    known = available.known
    errors = []
    off = sorted({n for n in used if n not in known and n in available.unavailable})
    for name in off:
        errors.append(FieldError(field_name, available.unavailable[name], "placeholder_unavailable"))
    unknown = sorted({n for n in used if n not in known and n not in available.unavailable})
    if unknown:
        listed = ", ".join("{" + n + "}" for n in unknown)
        errors.append(FieldError(field_name, f"unknown placeholder(s) {listed}; known: "
                                 + ", ".join("{" + n + "}" for n in sorted(known)), "unknown_placeholder"))
    if allowed_needs is not None:
        allowed = set(allowed_needs)
        unfit = sorted({n for n in used if n in known and known[n].needs not in allowed})
        if unfit:
            errors.append(FieldError(field_name, "this kind of message has no appointment for "
                                     + ", ".join("{" + n + "}" for n in unfit), "placeholder_not_available"))
    return errors


def validate(body: str, subject: str = "", available: PlaceholderSet | None = None) -> None:
    errors = check(body, "body", available=available) + (
        check(subject, "subject", available=available) if subject else [])
    if errors:
        raise ValidationFailed(errors)


def render(text: str, ctx: RenderContext, *, sample: bool = False, available: PlaceholderSet | None = None,
           plugins: bool = True, defer_plugins: bool = False) -> str:
    """Fill ``text``'s placeholders from ``available`` (the core's alone without it). A placeholder that is
    unknown, belongs to a plugin not enabled in the clinic or cannot be filled raises ``RenderError`` with a
    readable reason. With ``plugins=False`` plugins are not asked: their placeholders stay as ``{name}``
    (a preview that must not call plugins); with ``defer_plugins`` a plugin's placeholder raises
    ``RenderError("placeholder_deferred")`` instead of calling the plugin (the caller holds a transaction)."""
    known = available.known if available is not None else _registry  # registering replaces entries atomically
    out = []
    try:
        fields = _parsed(text)
    except ValueError as exc:
        raise RenderError("invalid_placeholder", f"the template cannot be read: {exc}") from exc
    for f in fields:
        out.append(f.literal)
        if f.name is None:
            continue
        placeholder = known.get(f.name)
        if placeholder is None:
            why = available.unavailable.get(f.name) if available is not None else None
            if why is not None:
                raise RenderError("placeholder_unavailable", why)
            raise RenderError("unknown_placeholder", f"the template uses {{{f.name}}}, which no longer exists")
        if placeholder.source != "core" and (defer_plugins or not plugins):
            if defer_plugins:
                raise RenderError("placeholder_deferred", f"{{{f.name}}} is filled by a plugin, outside the "
                                  "transaction", plugin=placeholder.source, retry_at=ctx_now())
            out.append("{" + f.name + "}")
            continue
        value = placeholder.sample(ctx) if sample else placeholder.resolve(ctx)
        out.append("" if value is None else str(value))
    return "".join(out)


@lru_cache(maxsize=1024)
def _parsed_cached(text: str) -> tuple[Field_, ...]:
    return tuple(parse(text))


def _parsed(text: str) -> tuple[Field_, ...]:
    return _parsed_cached(text)
