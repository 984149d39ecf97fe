"""Patient search at scale: name prefix, phone digits and chart number, service vs raw SQL.

Run:  .venv/bin/python bench/patient_search.py [--n 1000000] [--queries 200] [--database-url URL]
Goal (issue 3): p95 <= 20 ms and <= 1.5x the raw SQL of the same query.

Builds N patients in one clinic with bulk inserts (COPY on PostgreSQL, executemany on SQLite): the
patient rows, one phone each and the name search keys the service would write. Then, for each kind
of search, runs the same queries through ``PatientService.search`` (page with total + the page's phones)
and as the equivalent hand-written SQL on a raw DB-API connection, and prints p50/p95 of both.
Without ``--database-url`` it uses a SQLite file in a temporary folder, removed at the end.
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import event, text  # noqa: E402

from core.app_context import bootstrap  # noqa: E402
from core.config import Settings  # noqa: E402
from core.db import transaction  # noqa: E402
from core.models.clinic import Clinic  # noqa: E402
from core.patients import contacts, search  # noqa: E402
from core.patients.service import PatientService  # noqa: E402

FAMILY = ["Nagy", "Kovács", "Tóth", "Szabó", "Horváth", "Varga", "Kiss", "Molnár", "Németh", "Farkas", "Balogh",
          "Papp", "Takács", "Juhász", "Lakatos", "Mészáros", "Oláh", "Simon", "Rácz", "Fekete", "Szilágyi",
          "Török", "Fehér", "Balázs", "Gál", "Kis", "Szűcs", "Kocsis", "Orsós", "Pintér", "Fodor", "Szalai",
          "Sipos", "Magyar", "Lukács", "Gulyás", "Biró", "Király", "Balog", "László", "Katona", "Jakab", "Bogdán",
          "Sándor", "Boros", "Fazekas", "Kelemen", "Antal", "Orosz", "Somogyi", "Fülöp", "Veres", "Budai", "Vincze",
          "Hegedűs", "Deák", "Pap", "Bálint", "Illés", "Pál", "Vass", "Szőke", "Fábián", "Vörös", "Lengyel",
          "Bognár", "Bodnár", "Jónás", "Szücs", "Hajdu", "Halász", "Máté", "Székely", "Kozma", "Gáspár", "Pásztor",
          "Bakos", "Dudás", "Major", "Orbán", "Hegedüs", "Virág", "Barna", "Novák", "Soós", "Tamás", "Nemes",
          "Pataki", "Balla", "Faragó", "Kerekes", "Borbély", "Barta", "Péter", "Szekeres", "Csonka", "Mezei",
          "Márton", "Sárközi", "Berki"]
GIVEN = ["Anna", "Mária", "Erzsébet", "Katalin", "Éva", "Ilona", "Zsófia", "Judit", "Ágnes", "Andrea", "Erika",
         "Krisztina", "Márta", "Eszter", "Zsuzsanna", "Anikó", "Viktória", "Nóra", "Hanna", "Lili", "Réka", "Dóra",
         "Boglárka", "Kitti", "Petra", "Gabriella", "Mónika", "Tímea", "Orsolya", "Emese", "László", "István",
         "József", "János", "Zoltán", "Sándor", "Gábor", "Ferenc", "Attila", "Péter", "Tamás", "Zsolt", "Tibor",
         "András", "Csaba", "Imre", "Lajos", "György", "Balázs", "Róbert", "Mihály", "Dávid", "Bence", "Máté",
         "Levente", "Ádám", "Dániel", "Márk", "Dominik", "Olivér", "Norbert", "Krisztián", "Gergely", "Béla",
         "Miklós", "Viktor", "Szabolcs", "Richárd", "Roland", "Áron", "Barnabás", "Botond", "Kristóf", "Marcell",
         "Milán", "Noel", "Zalán", "Benedek", "Vilmos", "Ernő", "Kornél", "Lőrinc", "Kálmán", "Endre", "Géza",
         "Jenő", "Rudolf", "Károly", "Antal", "Pál", "Gyula", "Dezső", "Elemér", "Ottó", "Ödön", "Tivadar",
         "Csongor", "Huba", "Zsigmond", "Bálint"]
BATCH = 20_000


def _big_cache(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA cache_size=-262144")  # 256 MiB: the bulk load is index-bound


def build_rows(n: int, clinic_id: int, seed: int) -> Iterator[tuple[list[dict], list[dict], list[dict]]]:
    rng = random.Random(seed)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    prefixes = ["20", "30", "70"]
    for start in range(0, n, BATCH):
        patients, phones, keys = [], [], []
        for i in range(start, min(n, start + BATCH)):
            pid = uuid.uuid4()
            family, given = rng.choice(FAMILY), rng.choice(GIVEN)
            e164 = f"+36{rng.choice(prefixes)}{rng.randrange(10**7):07d}"
            patients.append({
                "id": pid, "clinic_id": clinic_id, "chart_number": f"{i + 1:07d}", "family_name": family,
                "given_name": given, "name_key": search.name_key(family, given),
                "birth_date": date(1940, 1, 1) + timedelta(days=rng.randrange(30_000)), "sex": "unknown",
                "address": "", "preferred_channel": "sms", "vip": False, "notes": "", "tags": [],
                "status": "active", "created_at": at, "updated_at": at, "version": 1,
            })
            phones.append({"id": uuid.uuid4(), "clinic_id": clinic_id, "patient_id": pid, "e164": e164,
                           "kind": "mobile", "digits": f"{e164[1:]} 06{e164[3:]}", "position": 0,
                           "search_rowid": rng.getrandbits(62)})
            keys.extend({"clinic_id": clinic_id, "patient_id": pid, "key": k, "kind": kind}
                        for k, kind in search.name_keys(family, given, None, None))
        yield patients, phones, keys


def load(engine: Any, n: int, clinic_id: int, seed: int) -> None:
    from core.models.patient import Patient, PatientPhone, PatientSearchKey

    tables = [Patient.__table__, PatientPhone.__table__, PatientSearchKey.__table__]  # type: ignore[attr-defined]
    started, done = time.perf_counter(), 0
    postgres = engine.dialect.name == "postgresql"
    for batch in build_rows(n, clinic_id, seed):
        with engine.begin() as connection:
            for table, rows in zip(tables, batch, strict=True):
                if postgres:
                    _copy(connection, table, rows)
                else:
                    connection.execute(table.insert(), rows)
        done += len(batch[0])
        rate = done / (time.perf_counter() - started)
        print(f"\r  loaded {done:,}/{n:,} patients ({rate:,.0f}/s)", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    with engine.begin() as connection:
        connection.execute(text("ANALYZE"))


def _copy(connection: Any, table: Any, rows: list[dict]) -> None:
    import json

    columns = list(rows[0])
    raw = connection.connection.driver_connection
    with raw.cursor() as cursor, cursor.copy(f'COPY {table.name} ({", ".join(columns)}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row([json.dumps(v) if isinstance(v, list) else v for v in row.values()])


# --- the raw SQL of each search ---------------------------------------------------------------------

RAW_FILTER = {
    "name": ("p.id IN (SELECT k.patient_id FROM core_patient_search_key k WHERE k.clinic_id = {c} "
             "AND k.key >= {p}low AND k.key < {p}high)"),
    "phone": "p.id IN (SELECT f.patient_id FROM core_patient_phone f WHERE f.clinic_id = {c} "
             "AND f.digits LIKE {p}like)",
    # SQLite: the FTS5 trigram table the triggers keep (what the service queries there)
    "phone_sqlite": "p.id IN (SELECT f.patient_id FROM core_patient_phone f WHERE f.clinic_id = {c} "
                    "AND f.search_rowid IN (SELECT rowid FROM core_patient_phone_fts WHERE digits LIKE {p}like))",
    "chart": "p.chart_number = {p}chart",
}


def raw_search(raw: Any, dialect: str, clinic_id: int, kind: str, params: dict[str, Any]) -> int:
    mark = "%(" if dialect == "postgresql" else ":"
    end = ")s" if dialect == "postgresql" else ""
    cond = RAW_FILTER.get(f"{kind}_{dialect}", RAW_FILTER[kind]).replace("{c}", str(clinic_id))
    for name in ("low", "high", "like", "chart"):
        cond = cond.replace("{p}" + name, f"{mark}{name}{end}")
    where = f"p.clinic_id = {clinic_id} AND p.status = 'active' AND {cond}"
    cur = raw.cursor()
    cur.execute(f"SELECT p.id, p.chart_number, p.family_name, p.given_name, p.family_name_latin, "
                f"p.given_name_latin, p.birth_date, p.sex, p.vip, p.tags, p.status, p.deleted_at, "
                f"p.delete_reason, p.version, count(*) OVER () AS total FROM core_patient p WHERE {where} "
                f"ORDER BY p.family_name, p.given_name, p.chart_number LIMIT 50", params)
    rows = cur.fetchall()
    total = rows[0][-1] if rows else 0
    ids = [r[0] for r in rows]
    if ids:
        marks = ", ".join((f"%(i{j})s" if dialect == "postgresql" else f":i{j}") for j in range(len(ids)))
        cur.execute(f"SELECT patient_id, e164 FROM core_patient_phone WHERE patient_id IN ({marks}) "
                    f"ORDER BY patient_id, position", {f"i{j}": v for j, v in enumerate(ids)})
        cur.fetchall()
    cur.close()
    return int(total)


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="patients to build (default 1,000,000)")
    parser.add_argument("--queries", type=int, default=200, help="queries of each kind (default 200)")
    parser.add_argument("--database-url", default=None, help="an empty database; default: a temporary SQLite file")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="praxis-bench-"))
    try:
        settings = Settings(data_dir=tmp, database_url=args.database_url, plugins_file=tmp / "plugins.toml",
                            master_key=f"1:{base64.b64encode(os.urandom(32)).decode()}", embedded_worker=False)
        praxis = bootstrap(settings, entry_points=[])
        if praxis.engine.dialect.name == "sqlite":
            event.listen(praxis.engine, "connect", _big_cache)
            praxis.engine.dispose()
        with transaction(praxis.engine) as session:
            clinic = Clinic(name="Bench", country="HU", timezone="Europe/Budapest", locale="hu")
            session.add(clinic)
            session.flush()
            clinic_id = clinic.id
        assert clinic_id is not None
        dialect = praxis.engine.dialect.name
        print(f"database: {dialect}, building {args.n:,} patients", file=sys.stderr)
        t0 = time.perf_counter()
        load(praxis.engine, args.n, clinic_id, args.seed)
        print(f"  built in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        run(praxis, clinic_id, dialect, args)
        praxis.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(praxis: Any, clinic_id: int, dialect: str, args: argparse.Namespace) -> None:
    svc = PatientService(praxis)
    rng = random.Random(args.seed + 1)
    with praxis.engine.connect() as connection:
        sample = connection.execute(text(
            "SELECT p.family_name, p.given_name, p.chart_number, f.e164 FROM core_patient p "
            "JOIN core_patient_phone f ON f.patient_id = p.id WHERE p.clinic_id = :c LIMIT 20000"),
            {"c": clinic_id}).all()
    picks = [rng.choice(sample) for _ in range(args.queries)]
    cases: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {"name": [], "phone": [], "chart": []}
    for family, given, chart, e164 in picks:
        q = search.normalise(f"{family} {given[:2]}")
        low, high = search.prefix_range(q)
        cases["name"].append(({"q": q}, {"low": low, "high": high}))
        national = contacts.searchable_digits(e164).split(" ")[-1]
        start = rng.randrange(2, len(national) - 6)
        run_ = national[start:start + 7]
        cases["phone"].append(({"phone": run_}, {"like": f"%{run_}%"}))
        cases["chart"].append(({"chart_number": chart}, {"chart": chart}))
    raw_conn = praxis.engine.raw_connection()
    results = {}
    for kind, items in cases.items():
        # Warm both paths, then alternate them so caches favour neither.
        for svc_args, raw_args in items[:10]:
            svc.search(clinic_id, **svc_args)
            raw_search(raw_conn, dialect, clinic_id, kind, raw_args)
        svc_ms, raw_ms, totals = [], [], []
        for svc_args, raw_args in items:
            t0 = time.perf_counter()
            page = svc.search(clinic_id, **svc_args)
            t1 = time.perf_counter()
            raw_total = raw_search(raw_conn, dialect, clinic_id, kind, raw_args)
            t2 = time.perf_counter()
            assert page.total == raw_total, (kind, svc_args, page.total, raw_total)
            svc_ms.append((t1 - t0) * 1000)
            raw_ms.append((t2 - t1) * 1000)
            totals.append(raw_total)
        results[kind] = (svc_ms, raw_ms, totals)
    raw_conn.close()
    print(f"\npatient search, {args.n:,} patients, {dialect}, {args.queries} queries per kind "
          f"(first page of 50 with the total + its phones)")
    print(f"{'kind':<7}{'service p50':>13}{'p95':>9}{'raw p50':>10}{'p95':>9}{'p95 ratio':>11}{'avg hits':>10}")
    for kind, (svc_ms, raw_ms, totals) in results.items():
        print(f"{kind:<7}{pct(svc_ms, 50):>10.2f} ms{pct(svc_ms, 95):>6.2f} ms{pct(raw_ms, 50):>7.2f} ms"
              f"{pct(raw_ms, 95):>6.2f} ms{pct(svc_ms, 95) / max(pct(raw_ms, 95), 1e-9):>10.2f}x"
              f"{statistics.mean(totals):>10.1f}")


if __name__ == "__main__":
    main()
