"""This plugin's gettext catalog. Messages shown to staff are translated into the clinic's locale."""

from __future__ import annotations

import gettext
from functools import lru_cache
from pathlib import Path

DOMAIN = "praxis_china"
LOCALE_DIR = Path(__file__).with_name("locale")


@lru_cache(maxsize=32)
def catalog(locale: str) -> gettext.NullTranslations:
    """The catalog for a locale such as 'zh', 'zh_CN' or 'zh-CN'; English (the msgids) when there is none."""
    return gettext.translation(DOMAIN, LOCALE_DIR, languages=[locale.replace("-", "_")], fallback=True)


def translate(locale: str | None, msgid: str, **params: object) -> str:
    return catalog(locale or "en").gettext(msgid).format(**params)
