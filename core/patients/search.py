"""Name search keys and the search query.

A patient is found by a prefix of any of its keys. Keys are lower-cased, NFKC-normalised name forms:
family-first ("kovács anna"), each other word first ("anna kovács"), the name without spaces
("김민준"), accent-folded variants ("kovacs anna"), the Latin spelling, and whatever the clinic's
country plugins add through ``praxis_name_search_keys`` (pinyin, Korean initial consonants...).
A prefix match is a range scan on an index: ``key >= 'kov' AND key < 'kow'``.
"""

from __future__ import annotations

import functools
import logging
import re
import unicodedata
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import ColumnElement, bindparam, cast, column, exists, func, select, table
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import UnaryExpression
from sqlalchemy.sql.operators import custom_op

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


# --- the search statement ------------------------------------------------------------------------------
#
# A search is one statement: the page of matching patients, each with ``total`` (the matches over all pages,
# a window count) and joined to its phones in order, so a patient with n phones comes as n rows. Statements
# are built once per database dialect and set of criteria ("shape") with named bound parameters, so a call
# only binds values: SQLAlchemy finds the compiled form in its cache.

FILTERS = ("status", "name", "phone", "chart", "identifier", "tag", "vip")
"""The criteria a shape may hold, in this order. Their parameters: ``status``; ``low`` and ``high`` (the
name prefix's range); ``like`` (``%digits%``); ``chart``; ``type_code`` and ``blind_index``; ``tag``
(on PostgreSQL a one-element list); ``vip``. Every statement also takes ``clinic_id``."""

SUMMARY_COLUMNS = ("id", "chart_number", "family_name", "given_name", "family_name_latin", "given_name_latin",
                   "birth_date", "sex", "vip", "tags", "status", "deleted_at", "delete_reason", "version")
PHONE_FTS = table("core_patient_phone_fts", column("rowid"), column("digits"))


# Criteria that find few patients through an index of their own: the patients are then read by id.
_BY_ID = frozenset({"name", "phone", "identifier"})


def _plain(column_: Any) -> Any:
    """SQLite's documented way to keep a term from choosing an index: a unary ``+`` in front of the column."""
    return UnaryExpression(column_, operator=custom_op("+"), type_=column_.type)


def _filter(name: str, dialect: str, by_id: bool = False) -> ColumnElement[bool]:
    patients = Patient.__table__  # type: ignore[attr-defined]
    clinic = bindparam("clinic_id")
    if name == "status":
        return (_plain(patients.c.status) if by_id else patients.c.status) == bindparam("status")
    if name == "name":
        keys = PatientSearchKey.__table__  # type: ignore[attr-defined]
        return patients.c.id.in_(select(keys.c.patient_id).where(
            keys.c.clinic_id == clinic, keys.c.key >= bindparam("low"), keys.c.key < bindparam("high")))
    if name == "phone":
        # at least 3 digits, so an index serves the substring: the trigram index on PostgreSQL, the FTS5
        # trigram table on SQLite
        phones = PatientPhone.__table__  # type: ignore[attr-defined]
        like = bindparam("like")
        if dialect == "sqlite":  # the phones by row id, not all of the clinic's through ix_core_patient_phone_e164
            hits = select(PHONE_FTS.c.rowid).where(PHONE_FTS.c.digits.like(like))
            found = select(phones.c.patient_id).where(_plain(phones.c.clinic_id) == clinic,
                                                       phones.c.search_rowid.in_(hits))
        else:
            found = select(phones.c.patient_id).where(phones.c.clinic_id == clinic, phones.c.digits.like(like))
        return patients.c.id.in_(found)
    if name == "chart":
        return patients.c.chart_number == bindparam("chart")
    if name == "identifier":
        identifiers = PatientIdentifier.__table__  # type: ignore[attr-defined]
        return patients.c.id.in_(select(identifiers.c.patient_id).where(
            identifiers.c.clinic_id == clinic, identifiers.c.type_code == bindparam("type_code"),
            identifiers.c.blind_index == bindparam("blind_index")))
    if name == "tag":  # the JSON ``tags`` list holds the tag exactly
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            return cast(patients.c.tags, JSONB).contains(bindparam("tag", type_=JSONB))
        each = func.json_each(patients.c.tags).table_valued("value")
        return exists(select(1).select_from(each).where(each.c.value == bindparam("tag")))
    if name == "vip":
        return patients.c.vip == bindparam("vip")
    raise ValueError(f"unknown search criterion {name!r}")


def _where(dialect: str, shape: tuple[str, ...]) -> list[ColumnElement[bool]]:
    """The conditions of ``shape``. On SQLite, when a name, phone or identifier criterion is given, the
    patients' clinic and status terms are kept off the indexes: without statistics (nothing runs ANALYZE on
    an embedded database) SQLite guesses an equality on an index to be selective and would walk every patient
    of the clinic through ``ix_core_patient_list``, probing each against the few matches (seconds at 1 M)."""
    patients = Patient.__table__  # type: ignore[attr-defined]
    by_id = dialect == "sqlite" and not _BY_ID.isdisjoint(shape)
    clinic = _plain(patients.c.clinic_id) if by_id else patients.c.clinic_id
    return [clinic == bindparam("clinic_id"), *(_filter(name, dialect, by_id) for name in shape)]


@functools.lru_cache(maxsize=512)
def page_statement(dialect: str, shape: tuple[str, ...]) -> Select[Any]:
    """The page (``limit``, ``offset``) sorted by name, then chart number, of the patients matching ``shape``:
    the ``SUMMARY_COLUMNS``, ``total``, then ``e164``, one row per phone in order (NULL when none)."""
    patients = Patient.__table__  # type: ignore[attr-defined]
    phones = PatientPhone.__table__  # type: ignore[attr-defined]
    page = (select(*(patients.c[name] for name in SUMMARY_COLUMNS), func.count().over().label("total"))
            .where(*_where(dialect, shape))
            .order_by(patients.c.family_name, patients.c.given_name, patients.c.chart_number)
            .limit(bindparam("limit")).offset(bindparam("offset"))
            .subquery("page"))
    return (select(*(page.c[name] for name in SUMMARY_COLUMNS), page.c.total, phones.c.e164)
            .select_from(page.outerjoin(phones, phones.c.patient_id == page.c.id))
            .order_by(page.c.family_name, page.c.given_name, page.c.chart_number, phones.c.position))


@functools.lru_cache(maxsize=512)
def count_statement(dialect: str, shape: tuple[str, ...]) -> Select[Any]:
    """How many patients match: asked only for a page past the last (the page statement counts otherwise)."""
    return select(func.count()).select_from(Patient.__table__).where(*_where(dialect, shape))  # type: ignore[attr-defined]


def phones_of(ids: list[uuid.UUID]) -> Select[Any]:
    return (select(PatientPhone.patient_id, PatientPhone.e164)
            .where(PatientPhone.patient_id.in_(ids))  # type: ignore[attr-defined]
            .order_by(PatientPhone.patient_id, PatientPhone.position))
