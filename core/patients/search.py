"""Name search keys and the search query.

A patient is found by a prefix of any of its keys. Keys are lower-cased, NFKC-normalised name forms:
family-first ("kovács anna"), each other word first ("anna kovács"), the name without spaces
("김민준"), accent-folded variants ("kovacs anna"), the Latin spelling, and whatever the clinic's
country plugins add through ``praxis_name_search_keys`` (pinyin, Korean initial consonants...).
A prefix match is a range scan on an index: ``key >= 'kov' AND key < 'kow'``.
"""

from __future__ import annotations

import logging
import re
import unicodedata
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import ColumnElement, column, exists, func, select, table
from sqlalchemy.sql import Select
from sqlmodel import col

from core.models.patient import Patient, PatientIdentifier, PatientPhone, PatientSearchKey

log = logging.getLogger(__name__)
KEY_LENGTH = 200
MIN_PHONE_DIGITS = 3
_SPACE = re.compile(r"\s+")
_NOT_DIGIT = re.compile(r"\D")


def normalise(text: str | None) -> str:
    """NFKC, lower case, single spaces: how keys are stored and queries are compared."""
    if not text:
        return ""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def fold(text: str) -> str:
    """Drop accents ("kovács" -> "kovacs", "ё" -> "е") but keep Hangul syllables whole."""
    stripped = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return unicodedata.normalize("NFC", stripped)


def name_key(family: str, given: str) -> str:
    """The form two registrations of the same person share, for the duplicate check."""
    return fold(normalise(f"{family} {given}"))[:210]


def _rotations(family: str, given: str) -> list[str]:
    words = normalise(f"{family} {given}").split(" ")
    words = [w for w in words if w]
    return [" ".join(words[i:] + words[:i]) for i in range(len(words))]


def name_keys(
    family: str,
    given: str,
    family_latin: str | None,
    given_latin: str | None,
    plugin_keys: Callable[[str], Iterable[str]] | None = None,
) -> list[tuple[str, str]]:
    """Every (key, kind) for a name; kinds are family, given, compact, latin and plugin."""
    keys: dict[str, str] = {}

    def add(key: str, kind: str) -> None:
        key = key.strip()[:KEY_LENGTH]
        if key and key not in keys:
            keys[key] = kind

    for i, rotation in enumerate(_rotations(family, given)):
        kind = "family" if i == 0 else "given"
        add(rotation, kind)
        add(fold(rotation), kind)
    add(normalise(family + given).replace(" ", ""), "compact")
    if family_latin or given_latin:
        for rotation in _rotations(family_latin or "", given_latin or ""):
            add(rotation, "latin")
            add(fold(rotation), "latin")
    if plugin_keys is not None:
        texts = [f"{family} {given}".strip()]
        if given.strip():
            texts.append(given.strip())
        for text in texts:
            for key in plugin_keys(text):
                norm = normalise(key)
                add(norm, "plugin")
                add(norm.replace(" ", ""), "plugin")
    return [(key, kind) for key, kind in keys.items()]


def plugin_key_source(runtime: Any, clinic_id: int) -> Callable[[str], list[str]]:
    """Call ``praxis_name_search_keys`` of the plugins enabled in the clinic.

    Called directly, not through ``runtime.call``: a failing plugin only costs its extra keys, and
    nothing is written to the database from inside the caller's transaction.
    """
    impls = runtime.implementations("praxis_name_search_keys",
                                    runtime.enabled(clinic_id, include_open_circuits=True))

    def keys(text: str) -> list[str]:
        out: list[str] = []
        for plugin, impl in impls:
            try:
                value = impl.function(*[{"text": text}[a] for a in impl.argnames])
            except Exception:
                log.exception("plugin %s failed in praxis_name_search_keys", plugin)
                continue
            out.extend(str(v) for v in (value or []) if v)
        return out

    return keys


def prefix_range(prefix: str) -> tuple[str, str]:
    """Bounds of every string starting with ``prefix`` in code point (= UTF-8 byte) order."""
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)


def phone_run(text: str) -> str:
    return _NOT_DIGIT.sub("", text or "")


# --- query parts -----------------------------------------------------------------------------------


def name_filter(clinic_id: int, query: str) -> ColumnElement[bool]:
    low, high = prefix_range(query)
    keys = select(PatientSearchKey.patient_id).where(
        PatientSearchKey.clinic_id == clinic_id, PatientSearchKey.key >= low, PatientSearchKey.key < high
    )
    return Patient.id.in_(keys)  # type: ignore[attr-defined]


PHONE_FTS = table("core_patient_phone_fts", column("rowid"), column("digits"))


def phone_filter(dialect: str, clinic_id: int, digits: str) -> ColumnElement[bool]:
    """Patients with a phone containing the run ``digits`` (at least 3 of them, so an index serves it:
    the trigram index on PostgreSQL, the FTS5 trigram table on SQLite)."""
    pattern = f"%{digits}%"
    phones = select(PatientPhone.patient_id).where(PatientPhone.clinic_id == clinic_id)
    if dialect == "sqlite":
        hits = select(PHONE_FTS.c.rowid).where(PHONE_FTS.c.digits.like(pattern))
        phones = phones.where(col(PatientPhone.search_rowid).in_(hits))
    else:
        phones = phones.where(col(PatientPhone.digits).like(pattern))
    return Patient.id.in_(phones)  # type: ignore[attr-defined]


def identifier_filter(clinic_id: int, type_code: str, blind_index: str) -> ColumnElement[bool]:
    rows = select(PatientIdentifier.patient_id).where(
        PatientIdentifier.clinic_id == clinic_id,
        PatientIdentifier.type_code == type_code,
        PatientIdentifier.blind_index == blind_index,
    )
    return Patient.id.in_(rows)  # type: ignore[attr-defined]


def tag_filter(dialect: str, tag: str) -> ColumnElement[bool]:
    """Patients whose JSON ``tags`` list holds ``tag`` exactly."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import JSONB
        from sqlalchemy.sql.expression import cast

        return cast(Patient.tags, JSONB).contains([tag])  # type: ignore[arg-type]
    each = func.json_each(Patient.tags).table_valued("value")
    return exists(select(1).select_from(each).where(each.c.value == tag))


SUMMARY_COLUMNS = ("id", "chart_number", "family_name", "given_name", "family_name_latin", "given_name_latin",
                   "birth_date", "sex", "vip", "tags", "status", "deleted_at", "delete_reason", "version")


def base_query(clinic_id: int, status: str | None) -> Select[Any]:
    """The columns a result row shows, plus ``total``: the number of matches over all pages."""
    columns = [getattr(Patient, name) for name in SUMMARY_COLUMNS]
    stmt = select(*columns, func.count().over().label("total")).where(Patient.clinic_id == clinic_id)
    if status is not None:
        stmt = stmt.where(Patient.status == status)
    return stmt


def count_of(stmt: Select[Any]) -> Select[Any]:
    return select(func.count()).select_from(stmt.order_by(None).limit(None).offset(None).subquery())


def phones_of(ids: list[uuid.UUID]) -> Select[Any]:
    return (select(PatientPhone.patient_id, PatientPhone.e164)
            .where(PatientPhone.patient_id.in_(ids))  # type: ignore[attr-defined]
            .order_by(PatientPhone.patient_id, PatientPhone.position))

