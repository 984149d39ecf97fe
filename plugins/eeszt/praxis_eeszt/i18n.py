"""This plugin's gettext catalog (domain ``praxis_eeszt``): panel titles and the panels' HTML fragments."""

from __future__ import annotations

import gettext
from functools import lru_cache
from pathlib import Path

DOMAIN = "praxis_eeszt"
LOCALE_DIR = Path(__file__).with_name("locale")


@lru_cache(maxsize=32)
def catalog(locale: str) -> gettext.NullTranslations:
    """The catalog for a locale such as 'hu', 'hu_HU' or 'hu-HU'; English (the msgids) when there is none."""
    return gettext.translation(DOMAIN, LOCALE_DIR, languages=[locale.replace("-", "_")], fallback=True)


def translate(locale: str | None, msgid: str) -> str:
    return catalog(locale or "en").gettext(msgid)
