"""Patient search at scale: name prefix, phone digits and chart number, service vs raw SQL.

Run:  .venv/bin/python bench/patient_search.py [--n 1000000] [--queries 200] [--database-url URL] [--explain]
Goal (issue 3): p95 <= 20 ms and <= 1.5x the raw SQL of the same query.

Builds N patients in one clinic with bulk inserts (COPY on PostgreSQL, executemany on SQLite): the
patient rows, one phone each and the name search keys the service would write (then VACUUM ANALYZE on
PostgreSQL; no statistics on SQLite, as in use). Then, for each kind of search, runs the same queries through
``PatientService.search`` (first page of 50 with the total and the page's phones) and as raw SQL,
alternately, and prints p50/p95 of both.

The raw SQL is not a hand-written equivalent: it is the very statement text and parameters the service
sent to the driver for that query (captured in a first call), executed on a raw DB-API connection with
all rows fetched; see "the raw SQL of each search" below for what the service adds around it.
``--explain`` prints the plan of the first query of each kind. Without ``--database-url`` it uses a
SQLite file in a temporary folder, removed at the end. On PostgreSQL give an empty database.
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
    # The state a running installation is in. PostgreSQL: what autovacuum keeps up, statistics and the
    # visibility map (index-only scans of the name keys then skip the table). SQLite: nothing runs ANALYZE on
    # the embedded database, so the plans must hold without statistics.
    if postgres:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
    else:  # small transactions keep a running installation's WAL short; the bulk load did not
        raw = engine.raw_connection()
        try:
            busy, _, _ = raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            assert not busy, "the WAL could not be checkpointed"
        finally:
            raw.close()


def _copy(connection: Any, table: Any, rows: list[dict]) -> None:
    import json

    columns = list(rows[0])
    raw = connection.connection.driver_connection
    with raw.cursor() as cursor, cursor.copy(f'COPY {table.name} ({", ".join(columns)}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row([json.dumps(v) if isinstance(v, list) else v for v in row.values()])


# --- the raw SQL of each search ---------------------------------------------------------------------
#
# "Raw" is exactly what the service sends to the database for the same search: the statement text and
# parameters are captured from a call of PatientService.search (before_cursor_execute), then executed on a
# raw DB-API connection (autocommit on PostgreSQL, as the service's read is) and all rows fetched. The
# difference is what the service adds around the same SQL: the pool checkout (with its pre-ping on
# PostgreSQL), the read transaction on SQLite, SQLAlchemy's execution and type conversion, grouping the
# phones into their patients and the pydantic page.

Captured = list[tuple[str, Any]]


def capture(engine: Any, call: Any) -> Captured:
    """The queries (not BEGIN/ROLLBACK) that ``call()`` sends to the driver."""
    seen: Captured = []

    def listen(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if statement.lstrip()[:6].upper() in ("SELECT", "WITH"):
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", listen)
    try:
        call()
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    return seen


def raw_search(raw: Any, statements: Captured) -> int:
    """Run the captured statements; the total matches as the page statement counts them."""
    total = 0
    cur = raw.cursor()
    for i, (statement, parameters) in enumerate(statements):
        cur.execute(statement, parameters)
        rows = cur.fetchall()
        if i == 0:
            total = rows[0][-2] if rows else 0
    cur.close()
    return int(total)


def explain(raw: Any, dialect: str, statements: Captured) -> str:
    """The plan of each statement: EXPLAIN (ANALYZE, BUFFERS) on PostgreSQL, EXPLAIN QUERY PLAN on SQLite."""
    cur = raw.cursor()
    lines = []
    for statement, parameters in statements:
        if dialect == "postgresql":
            cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
            lines.extend(row[0] for row in cur.fetchall())
        else:
            cur.execute("EXPLAIN QUERY PLAN " + statement, parameters)
            depth: dict[int, int] = {0: -1}
            for node, parent, _unused, detail in cur.fetchall():
                depth[node] = depth.get(parent, -1) + 1
                lines.append("  " * depth[node] + detail)
    cur.close()
    return "\n".join(lines)


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="patients to build (default 1,000,000)")
    parser.add_argument("--queries", type=int, default=200, help="queries of each kind (default 200)")
    parser.add_argument("--database-url", default=None, help="an empty database; default: a temporary SQLite file")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--explain", action="store_true", help="print the plan of the first query of each kind")
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
    cases: dict[str, list[dict[str, Any]]] = {"name": [], "phone": [], "chart": []}
    for family, given, chart, e164 in picks:
        cases["name"].append({"q": search.normalise(f"{family} {given[:2]}")})
        national = contacts.searchable_digits(e164).split(" ")[-1]
        start = rng.randrange(2, len(national) - 6)
        cases["phone"].append({"phone": national[start:start + 7]})
        cases["chart"].append({"chart_number": chart})
    raw_conn = praxis.engine.raw_connection()
    raw_conn.detach()  # its autocommit setting must not go back to the pool
    if dialect == "postgresql":
        raw_conn.dbapi_connection.autocommit = True
    results = {}
    for kind, items in cases.items():
        statements = [capture(praxis.engine, lambda a=svc_args: svc.search(clinic_id, **a)) for svc_args in items]
        if args.explain:
            print(f"\n--- {kind}: {items[0]}\n{explain(raw_conn, dialect, statements[0])}")
        # warm both paths
        for svc_args, raw_statements in list(zip(items, statements, strict=True))[:10]:
            svc.search(clinic_id, **svc_args)
            raw_search(raw_conn, raw_statements)
        svc_ms, raw_ms, totals = [], [], []
        for i, (svc_args, raw_statements) in enumerate(zip(items, statements, strict=True)):
            # each query was run once already (captured); which side goes first alternates, so pages one
            # side brought into the caches favour neither
            for side in ("service", "raw") if i % 2 == 0 else ("raw", "service"):
                t0 = time.perf_counter()
                if side == "service":
                    page = svc.search(clinic_id, **svc_args)
                    svc_ms.append((time.perf_counter() - t0) * 1000)
                else:
                    raw_total = raw_search(raw_conn, raw_statements)
                    raw_ms.append((time.perf_counter() - t0) * 1000)
            assert page.total == raw_total, (kind, svc_args, page.total, raw_total)
            totals.append(raw_total)
        results[kind] = (svc_ms, raw_ms, totals, statistics.mean(len(s) for s in statements))
    raw_conn.close()
    print(f"\npatient search, {args.n:,} patients, {dialect}, {args.queries} queries per kind "
          f"(first page of 50 with the total + its phones; raw = the same statements on a DB-API connection)")
    print(f"{'kind':<7}{'service p50':>13}{'p95':>9}{'raw p50':>10}{'p95':>9}{'p95 ratio':>11}{'avg hits':>10}"
          f"{'statements':>12}")
    for kind, (svc_ms, raw_ms, totals, per_call) in results.items():
        print(f"{kind:<7}{pct(svc_ms, 50):>10.2f} ms{pct(svc_ms, 95):>6.2f} ms{pct(raw_ms, 50):>7.2f} ms"
              f"{pct(raw_ms, 95):>6.2f} ms{pct(svc_ms, 95) / max(pct(raw_ms, 95), 1e-9):>10.2f}x"
              f"{statistics.mean(totals):>10.1f}{per_call:>12.1f}")


if __name__ == "__main__":
    main()
