"""Translations and locale-aware formatting for the web UI.

* Five UI languages (``LOCALES``); the core catalog is the gettext domain ``praxis`` in ``ui/locale``.
* Each plugin's catalog (``praxis_translations_dir`` hook, domain ``manifest.domain``) is loaded per locale
  and kept under its own domain, so ``plugin_text(plugin, msgid)`` translates a plugin's manifest title or
  menu item from that plugin's catalog (no collisions with the core or other plugins). Plugin messages the
  core catalog lacks are also merged into it, so plugin templates can use plain ``{% trans %}``; on a
  collision the core's translation wins.
* The translations of the current request live in a ContextVar; the gettext callables installed in the
  Jinja environment (newstyle) and the Python helpers below read it, so one process serves every
  language at once.
* Dates, times and numbers are formatted with Babel in the locale and the clinic's time zone.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale
from babel import dates as babel_dates
from babel import numbers as babel_numbers
from babel.support import NullTranslations, Translations

log = logging.getLogger(__name__)

DOMAIN = "praxis"
LOCALE_DIR = Path(__file__).with_name("locale")
DEFAULT_LOCALE = "en"
LOCALES: tuple[str, ...] = ("en", "ko", "ru", "zh_Hans", "hu")
# Each language's own name, as the language switcher shows it.
LANGUAGE_NAMES: dict[str, str] = {
    "en": "English", "ko": "한국어", "ru": "Русский", "zh_Hans": "简体中文", "hu": "Magyar",
}
# BCP 47 tags for <html lang>.
HTML_LANG: dict[str, str] = {"en": "en", "ko": "ko", "ru": "ru", "zh_Hans": "zh-Hans", "hu": "hu"}
# Folder names a plugin may have used for a locale's catalog, most specific first.
_CATALOG_NAMES: dict[str, list[str]] = {
    "en": ["en", "en_US"],
    "ko": ["ko", "ko_KR"],
    "ru": ["ru", "ru_RU"],
    "zh_Hans": ["zh_Hans", "zh_Hans_CN", "zh_CN", "zh"],
    "hu": ["hu", "hu_HU"],
}
LANG_COOKIE = "praxis_lang"


def normalize_locale(tag: str | None) -> str | None:
    """Map a language tag (``hu-HU``, ``zh_CN``, ``zh-Hans``, ``KO``) to one of ``LOCALES``, or None."""
    if not tag:
        return None
    parts = re.split(r"[-_]", tag.strip())
    language = parts[0].lower()
    if language == "zh":
        return "zh_Hans"  # the only Chinese UI; Traditional-script readers read it far better than English
    for locale in LOCALES:
        if locale.split("_")[0] == language:
            return locale
    return None


def negotiate(accept_language: str | None) -> str | None:
    """The best UI locale for an ``Accept-Language`` header (quality values respected), or None."""
    if not accept_language:
        return None
    ranked: list[tuple[float, int, str]] = []
    for index, item in enumerate(accept_language.split(",")):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        match = re.search(r"q\s*=\s*([0-9.]+)", params)
        if match:
            try:
                quality = float(match.group(1))
            except ValueError:
                quality = 0.0
        if tag and quality > 0:
            ranked.append((-quality, index, tag))
    for _q, _i, tag in sorted(ranked):
        locale = normalize_locale(tag)
        if locale:
            return locale
    return None


# --- catalogs ------------------------------------------------------------------------------------------


class Catalogs:
    """The merged translations of each UI locale: the core's, plus every plugin's under its domain."""

    def __init__(self, plugin_dirs: dict[str, tuple[str, Path]] | None = None) -> None:
        """``plugin_dirs`` maps plugin name -> (gettext domain, folder of ``<locale>/LC_MESSAGES``)."""
        self.plugin_domains: dict[str, str] = {}
        self.by_locale: dict[str, Translations] = {}
        for locale in LOCALES:
            core = Translations.load(str(LOCALE_DIR), [locale], DOMAIN)
            if not isinstance(core, Translations):  # no compiled catalog: the msgids (English) are shown
                core = Translations(domain=DOMAIN)
                core._catalog = {}
                core.plural = lambda n: int(n != 1)
            for plugin, (domain, folder) in (plugin_dirs or {}).items():
                self.plugin_domains[plugin] = domain
                found = Translations.load(str(folder), _CATALOG_NAMES[locale], domain)
                if isinstance(found, Translations):
                    core.add(found, merge=False)
                    for key, value in found._catalog.items():
                        if key and key not in core._catalog:
                            core._catalog[key] = value
            self.by_locale[locale] = core

    @classmethod
    def for_runtime(cls, runtime: Any) -> Catalogs:
        dirs: dict[str, tuple[str, Path]] = {}
        for result in runtime.collect("praxis_translations_dir"):
            loaded = runtime.get(result.plugin)
            if loaded is None or loaded.manifest is None or result.value is None:
                continue
            dirs[result.plugin] = (loaded.manifest.domain, Path(result.value))
        return cls(dirs)

    def get(self, locale: str) -> Translations:
        return self.by_locale.get(locale) or self.by_locale[DEFAULT_LOCALE]


# --- the request's locale --------------------------------------------------------------------------------


@dataclass(frozen=True)
class LocaleState:
    locale: str
    translations: NullTranslations
    tz: tzinfo
    plugin_domains: dict[str, str]

    @property
    def html_lang(self) -> str:
        return HTML_LANG.get(self.locale, self.locale)

    @property
    def babel_locale(self) -> Locale:
        return _babel_locale(self.locale)


def _null_state() -> LocaleState:
    return LocaleState(DEFAULT_LOCALE, NullTranslations(), UTC, {})


_current: ContextVar[LocaleState | None] = ContextVar("praxis_ui_locale", default=None)


def current() -> LocaleState:
    return _current.get() or _null_state()


def timezone(name: str | None) -> tzinfo:
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("unknown time zone %r; using UTC", name)
        return UTC


def activate(state: LocaleState) -> None:
    """Make ``state`` the locale of the running request (this context only)."""
    _current.set(state)


@contextlib.contextmanager
def using(state: LocaleState) -> Iterator[LocaleState]:
    token = _current.set(state)
    try:
        yield state
    finally:
        _current.reset(token)


def gettext(message: str) -> str:
    return current().translations.gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return current().translations.ngettext(singular, plural, n)


def pgettext(context: str, message: str) -> str:
    return current().translations.pgettext(context, message)


def npgettext(context: str, singular: str, plural: str, n: int) -> str:
    return current().translations.npgettext(context, singular, plural, n)


_ = gettext


def N_(message: str) -> str:  # noqa: N802 - the gettext convention
    """Mark a message for extraction; it is translated where it is shown."""
    return message


def plugin_text(plugin: str | None, message: str) -> str:
    """A plugin's msgid (manifest title, menu item) translated from the plugin's own catalog."""
    if not message:
        return message
    state = current()
    domain = state.plugin_domains.get(plugin or "")
    translations = state.translations
    if domain and isinstance(translations, Translations):
        sub = translations._domains.get(domain)
        if sub is not None and message in sub._catalog:
            return sub.gettext(message)
    return translations.gettext(message)


# --- formatting ----------------------------------------------------------------------------------------


def _babel_locale(locale: str) -> Locale:
    return Locale.parse(locale)


def _time_pattern(locale: Locale, fmt: str) -> str:
    pattern = locale.time_formats[fmt].pattern
    if locale.language == "ko":
        # CLDR's abbreviated Korean day period is "AM"/"PM"; people in Korea expect 오전/오후.
        pattern = re.sub(r"(?<![a'])a(?!a)", "aaaa", pattern)
    return pattern


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def format_datetime(value: datetime | None, fmt: str = "medium") -> str:
    """A moment in the clinic's time zone, e.g. 'Mar 6, 2026, 7:30 AM' / '2026. 3. 6. 오전 7:30'."""
    if value is None:
        return ""
    state = current()
    locale = state.babel_locale
    moment = _aware(value)
    if fmt not in ("short", "medium", "long", "full"):
        return babel_dates.format_datetime(moment, fmt, tzinfo=state.tz, locale=locale)
    date_part = babel_dates.format_date(moment.astimezone(state.tz).date(), fmt, locale=locale)
    time_fmt = "short" if fmt in ("short", "medium") else fmt
    time_part = babel_dates.format_time(moment, _time_pattern(locale, time_fmt), tzinfo=state.tz, locale=locale)
    return locale.datetime_formats[fmt].format(time_part, date_part)


def format_date(value: date | datetime | None, fmt: str = "medium") -> str:
    if value is None:
        return ""
    state = current()
    if isinstance(value, datetime):
        value = _aware(value).astimezone(state.tz).date()
    return babel_dates.format_date(value, fmt, locale=state.babel_locale)


def format_time(value: time | datetime | None, fmt: str = "short") -> str:
    if value is None:
        return ""
    state = current()
    locale = state.babel_locale
    pattern = _time_pattern(locale, fmt) if fmt in ("short", "medium", "long", "full") else fmt
    if isinstance(value, datetime):
        return babel_dates.format_time(_aware(value), pattern, tzinfo=state.tz, locale=locale)
    return babel_dates.format_time(value, pattern, locale=locale)


def format_number(value: int | float | Decimal | None) -> str:
    if value is None:
        return ""
    return babel_numbers.format_decimal(value, locale=current().babel_locale)


def format_percent(value: float | Decimal | None) -> str:
    if value is None:
        return ""
    return babel_numbers.format_percent(value, locale=current().babel_locale)


def country_name(code: str) -> str:
    """A country's name in the current language ('HU' -> 'Hungary', 'Magyarország', '헝가리' ...)."""
    return current().babel_locale.territories.get(code.upper(), code)


def install(env: Any) -> None:
    """Install the gettext callables (newstyle) and the formatting filters into a Jinja environment."""
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(gettext, ngettext, newstyle=True, pgettext=pgettext, npgettext=npgettext)
    env.filters.update({
        "datetime": format_datetime,
        "date": format_date,
        "time": format_time,
        "number": format_number,
        "percent": format_percent,
        "country_name": country_name,
    })
    env.globals["plugin_text"] = plugin_text
