"""The UI's catalogs are complete in all five languages, every template renders in each, and the
request's language never leaks into another request."""

from __future__ import annotations

import gettext
import re
import threading
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from tests.auth_helpers import create_user
from tests.conftest import add_clinic, fixture_plugin
from tests.ui.conftest import ui_plugin
from tests.ui.helpers import csrf_of, log_in, web_client
from tests.ui.labs_screens import visit_labs_screens
from tests.ui.messaging_screens import visit_messaging_screens
from tests.ui.records_screens import SIGNING as RECORDS_SIGNING
from tests.ui.records_screens import visit_records_screens
from tests.ui.screens import visit_screens
from ui import i18n
from ui.web import HTMX_SRI, STATIC, TEMPLATES

UI_DIR = Path(i18n.__file__).parent
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "pgettext": ((1, "c"), 2),
            "npgettext": ((1, "c"), 2, 3), "N_": None}
METHODS = [("**.py", "python"), ("**/templates/**.html", "jinja2")]
PASSWORD = "correct horse battery"


def extracted() -> set[tuple[str | None, str]]:
    found = set()
    for _file, _line, message, _comments, context in extract_from_dir(str(UI_DIR), METHODS, keywords=KEYWORDS):
        msgid = message[0] if isinstance(message, tuple) else message
        found.add((context, msgid))
    return found


def read_catalog(locale: str):  # type: ignore[no-untyped-def]
    with open(UI_DIR / "locale" / locale / "LC_MESSAGES" / f"{i18n.DOMAIN}.po", "rb") as handle:
        return read_po(handle, locale=locale)


@pytest.mark.parametrize("locale", i18n.LOCALES)
def test_every_ui_message_is_translated_and_none_is_fuzzy(locale):
    messages = extracted()
    assert ((None, "Wrong login name or password.") in messages and (None, "Plugins") in messages
            and (None, "Save settings") in messages), "extraction found too little: check KEYWORDS and METHODS"
    catalog = read_catalog(locale)
    by_key = {(m.context, m.id[0] if isinstance(m.id, (list, tuple)) else m.id): m for m in catalog if m.id}
    missing = sorted(k[1] for k in messages if k not in by_key)
    assert not missing, f"{locale}: not in the catalog (run scripts/i18n.sh): {missing}"
    untranslated = sorted(k[1] for k, m in by_key.items()
                          if not m.string or (isinstance(m.string, tuple) and not all(m.string)))
    assert not untranslated, f"{locale}: untranslated: {untranslated}"
    fuzzy = sorted(k[1] for k, m in by_key.items() if m.fuzzy)
    assert not fuzzy, f"{locale}: fuzzy: {fuzzy}"
    stale = sorted(k[1] for k in by_key if k not in messages)
    assert not stale, f"{locale}: in the catalog but no longer used (run scripts/i18n.sh): {stale}"
    plural_forms = catalog.num_plurals
    for key, message in by_key.items():
        if isinstance(message.id, (list, tuple)):
            assert len(message.string) == plural_forms, f"{locale}: {key[1]!r} needs {plural_forms} plural forms"
        placeholders = set(re.findall(r"%\(\w+\)[sd]", message.id if isinstance(message.id, str) else message.id[0]))
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for text in strings:
            assert set(re.findall(r"%\(\w+\)[sd]", text)) == placeholders, f"{locale}: placeholders of {key[1]!r}"


@pytest.mark.parametrize("locale", i18n.LOCALES)
def test_the_compiled_catalog_is_current(locale):
    catalog = read_catalog(locale)
    with open(UI_DIR / "locale" / locale / "LC_MESSAGES" / f"{i18n.DOMAIN}.mo", "rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    for message in catalog:
        if not message.id:
            continue
        if isinstance(message.id, (list, tuple)):
            for n, text in enumerate(message.string):
                count = next(c for c in range(1, 200) if compiled.plural(c) == n)
                assert compiled.ngettext(message.id[0], message.id[1], count) == text, "run scripts/i18n.sh compile"
        elif message.context:
            assert compiled.pgettext(message.context, message.id) == message.string, "run scripts/i18n.sh compile"
        else:
            assert compiled.gettext(message.id) == message.string, "run scripts/i18n.sh compile"


# --- every template in every language ---------------------------------------------------------------------


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []
        self.attrs: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):  # type: ignore[no-untyped-def]
        if tag in ("script", "style", "code"):
            self._skip += 1
        for name, value in attrs:
            if name in ("aria-label", "placeholder", "title") and value:
                self.attrs.append(value)

    def handle_endtag(self, tag):  # type: ignore[no-untyped-def]
        if tag in ("script", "style", "code"):
            self._skip -= 1

    def handle_data(self, data):  # type: ignore[no-untyped-def]
        if not self._skip and data.strip():
            self.texts.append(data.strip())


def _english_only_messages() -> set[str]:
    """msgids whose translation differs from the English in every other language (those must never show)."""
    english = set()
    others = [read_catalog(loc) for loc in i18n.LOCALES if loc != "en"]
    for message in read_catalog("en"):
        if message.id and isinstance(message.id, str) and "%(" not in message.id:
            if all(c.get(message.id) is not None and c.get(message.id).string != message.id for c in others):
                english.add(message.id)
    return english


def test_every_template_renders_in_all_five_languages_without_english_leftovers(make_praxis, monkeypatch):
    praxis = make_praxis([ui_plugin(), fixture_plugin("needs_greeter"), fixture_plugin("greeter"), RECORDS_SIGNING])
    clinic = add_clinic(praxis, "Szent Anna", country="HU", timezone="Europe/Budapest", locale="en")
    anna = create_user(praxis, [clinic], role="admin", login="anna", password=PASSWORD)
    create_user(praxis, [clinic], role="doctor", login="doc", password=PASSWORD)
    english_only = _english_only_messages()
    rendered: set[str] = set()
    for locale in i18n.LOCALES:
        client = web_client(praxis)
        client.cookies.set(i18n.LANG_COOKIE, locale)
        env = client.app.state.ui.env
        original = env.get_template

        def recording(name, *args, _original=original, **kwargs):  # type: ignore[no-untyped-def]
            rendered.add(name if isinstance(name, str) else name.name)
            return _original(name, *args, **kwargs)

        monkeypatch.setattr(env, "get_template", recording)
        pages = [client.get("/login"), log_in(client, "anna", "wrong")]
        log_in(client, "anna", PASSWORD)
        base = f"/clinics/{clinic}/admin/plugins"
        pages += [client.get(f"/clinics/{clinic}/"), client.get(base), client.get(f"{base}/reminders"),
                  client.get("/account/password"), client.get("/clinics/999/")]
        token = csrf_of(pages[2].text)
        pages.append(client.post(f"{base}/needs_greeter/enable", data={"csrf_token": token},
                                 headers={"HX-Request": "true"}))
        pages.append(client.post(f"{base}/reminders/settings", data={"csrf_token": token, "sender_name": "x",
                                                                      "daily_limit": "0", "channel": "sms"},
                                 headers={"HX-Request": "true"}))
        pages.append(client.post(f"{base}/reminders/settings", data={"csrf_token": token, "sender_name": "x"}))
        doc = web_client(praxis)
        doc.cookies.set(i18n.LANG_COOKIE, locale)
        log_in(doc, "doc", PASSWORD)
        pages.append(doc.get(base))
        pages += visit_screens(client, praxis, clinic)  # the desk, the appointment book and the admin screens
        pages += visit_records_screens(client, praxis, clinic, anna, "Anna")
        pages += visit_labs_screens(client, praxis, clinic)
        pages += visit_messaging_screens(client, praxis, clinic)
        for response in pages:
            assert response.status_code in (200, 403, 404, 409, 422), (locale, response.request.url,
                                                                       response.text[:300])
            if 'lang="' in response.text[:200]:
                assert f'<html lang="{i18n.HTML_LANG[locale]}">' in response.text
            if locale == "en":
                continue
            parser = _Text()
            parser.feed(response.text)
            leftovers = sorted({t for t in parser.texts + parser.attrs if t in english_only})
            assert not leftovers, f"{locale} {response.request.url}: English left: {leftovers}"
        monkeypatch.undo()
    templates = {str(p.relative_to(TEMPLATES)) for p in TEMPLATES.rglob("*.html")}
    assert templates <= rendered, f"templates never rendered: {sorted(templates - rendered)}"


# --- locale choice, plurals, formatting, plugin catalogs -----------------------------------------------------


def test_accept_language_and_tags_map_to_the_five_ui_languages():
    assert i18n.negotiate("zh-CN,zh;q=0.9,en;q=0.8") == "zh_Hans"
    assert i18n.negotiate("de-DE, ru;q=0.8, en;q=0.5") == "ru"
    assert i18n.negotiate("en;q=0.2, ko;q=0.9") == "ko"
    assert i18n.negotiate("de, fr") is None and i18n.negotiate("") is None
    assert i18n.normalize_locale("hu_HU") == "hu" and i18n.normalize_locale("zh-Hant-TW") == "zh_Hans"
    assert i18n.normalize_locale("xx") is None


def _state(locale: str, tz: str = "UTC") -> i18n.LocaleState:
    catalogs = i18n.Catalogs()
    return i18n.LocaleState(locale, catalogs.get(locale), i18n.timezone(tz), {})


def test_russian_plurals_have_three_forms():
    with i18n.using(_state("ru")):
        forms = [i18n.ngettext("%(num)d failure in a row.", "%(num)d failures in a row.", n) % {"num": n}
                 for n in (1, 2, 5, 21, 111)]
    assert forms == ["1 сбой подряд.", "2 сбоя подряд.", "5 сбоев подряд.", "21 сбой подряд.", "111 сбоев подряд."]


def test_dates_times_and_numbers_follow_the_locale_and_the_clinics_time_zone():
    moment = datetime(2026, 3, 5, 22, 30, tzinfo=UTC)
    with i18n.using(_state("ko", "Asia/Seoul")):
        assert i18n.format_datetime(moment) == "2026. 3. 6. 오전 7:30"
        assert i18n.format_time(moment) == "오전 7:30"
    with i18n.using(_state("hu", "Europe/Budapest")):
        assert i18n.format_datetime(moment, "short") == "2026. 03. 05. 23:30"
        assert i18n.format_number(12345.5) == "12\xa0345,5"
        assert i18n.country_name("KR") == "Dél-Korea"
    with i18n.using(_state("en", "America/New_York")):
        assert i18n.format_date(moment, "long") == "March 5, 2026"


def test_plugin_strings_come_from_the_plugins_own_catalog_and_the_core_wins_collisions(make_praxis):
    praxis = make_praxis([ui_plugin()])
    catalogs = i18n.Catalogs.for_runtime(praxis.runtime)
    state = i18n.LocaleState("ko", catalogs.get("ko"), UTC, catalogs.plugin_domains)
    with i18n.using(state):
        assert i18n.plugin_text("reminders", "Reminders") == "예약 알림"
        assert i18n.plugin_text("reminders", "Settings") == "알림 설정값"
        assert i18n.gettext("Settings") == "설정"  # the core's own word is not overridden by the plugin
        assert i18n.gettext("Reminders") == "예약 알림"  # merged, for plugin templates using plain gettext
    with i18n.using(i18n.LocaleState("ru", catalogs.get("ru"), UTC, catalogs.plugin_domains)):
        assert i18n.plugin_text("reminders", "Reminders") == "Reminders"  # no Russian catalog: the msgid


def test_concurrent_requests_never_see_each_others_language():
    states = {loc: _state(loc) for loc in i18n.LOCALES}
    expected = {loc: states[loc].translations.gettext("Plugins") for loc in i18n.LOCALES}
    assert len(set(expected.values())) == 5
    wrong: list[str] = []
    barrier = threading.Barrier(10)

    def work(locale: str) -> None:
        with i18n.using(states[locale]):
            barrier.wait()
            for _ in range(200):
                if i18n.gettext("Plugins") != expected[locale]:
                    wrong.append(locale)

    threads = [threading.Thread(target=work, args=(i18n.LOCALES[i % 5],)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not wrong


def test_the_vendored_htmx_matches_its_integrity_hash_and_is_version_2():
    import base64
    import hashlib

    data = (STATIC / "vendor" / "htmx-2.0.11.min.js").read_bytes()
    assert "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode() == HTMX_SRI
    assert b'version:"2.0.11"' in data
    assert (STATIC / "vendor" / "htmx-2.0.11.LICENSE").read_text().startswith("Zero-Clause BSD")
