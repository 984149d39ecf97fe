"""Every message the plugin shows has a Chinese translation, and the compiled catalog is current."""

from __future__ import annotations

import gettext
from pathlib import Path

import praxis_china
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po
from praxis_china.i18n import DOMAIN, LOCALE_DIR, translate

PACKAGE = Path(praxis_china.__file__).parent
KEYWORDS = {"N_": None, "translate": (2,), "IdentifierError": None, "_digits": (2,)}
LOCALES = ["zh"]


def used_msgids() -> set[str]:
    found = set()
    for path in PACKAGE.glob("*.py"):
        for _line, message, _comments, _context in extract_from_file("python", str(path), keywords=KEYWORDS):
            found.add(message)
    return found


def test_every_message_in_the_code_is_translated():
    msgids = used_msgids()
    assert "Resident identity number is required in this clinic" in msgids and "China" in msgids
    for locale in LOCALES:
        with open(LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po", "rb") as handle:
            catalog = read_po(handle)
        translated = {m.id for m in catalog if m.id and m.string}
        assert msgids <= translated, f"{locale}: untranslated {sorted(msgids - translated)}"


def test_the_compiled_catalog_matches_the_po_file():
    for locale in LOCALES:
        with open(LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po", "rb") as handle:
            po = {m.id: m.string for m in read_po(handle) if m.id}
        with open(LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.mo", "rb") as handle:
            mo = gettext.GNUTranslations(handle)
        assert {msgid: mo.gettext(msgid) for msgid in po} == po, "run: pybabel compile -d locale -D " + DOMAIN


def test_translate_falls_back_to_english_and_accepts_region_locales():
    assert translate("zh-CN", "Resident identity number") == "居民身份号码"
    assert translate("zh_CN", "Resident identity number must have 18 characters, not {count}", count=17) == (
        "居民身份号码应为18位，当前为17位")
    assert translate("en", "China") == "China"
