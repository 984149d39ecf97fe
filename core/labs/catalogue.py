"""Lab providers, their test catalogues, and the mapping between tests and the clinic's billable services.

First set-up imports a lab's whole catalogue at once (CSV or JSON, optionally with the service codes each test
maps to); later a single test or mapping is added by hand. Every write is one transaction with its audit entry.
"""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core import audit
from core.db import transaction
from core.labs.errors import FieldErrors, NotFound, invalid
from core.models.labs import LabKind, LabProvider, LabTest, LabTestService

if TYPE_CHECKING:
    from core.plugins.runtime import PluginRuntime

MAX_IMPORT_ROWS = 5000
PROVIDER_FIELDS = ("name", "kind", "connector_plugin", "code", "codes", "printer_host", "printer_port", "active")


# --- providers ------------------------------------------------------------------------------------------


def connector_plugins(runtime: PluginRuntime) -> set[str]:
    """Installed plugins that provide a lab connector."""
    return {r.plugin for r in runtime.collect("praxis_lab_connectors") if r.value}


def provider_dict(provider: LabProvider) -> dict[str, Any]:
    return {"id": provider.id, "name": provider.name, "kind": provider.kind,
            "connector_plugin": provider.connector_plugin, "code": provider.code, "codes": dict(provider.codes or {}),
            "printer_host": provider.printer_host, "printer_port": provider.printer_port, "active": provider.active}


def _check_provider(values: dict[str, Any], runtime: PluginRuntime) -> None:
    errors = FieldErrors()
    name = values.get("name")
    if not isinstance(name, str) or not name.strip():
        errors.add("name", "the lab needs a name", "required")
    kind = values.get("kind", LabKind.medical)
    if kind not in {k.value for k in LabKind}:
        errors.add("kind", "must be 'medical' or 'dental'")
    plugin = values.get("connector_plugin")
    if plugin:
        if kind == LabKind.dental:
            errors.add("connector_plugin", "dental labs take cases, not electronic orders: leave it empty")
        elif plugin not in connector_plugins(runtime):
            known = ", ".join(sorted(connector_plugins(runtime))) or "none installed"
            errors.add("connector_plugin", f"{plugin!r} is not an installed lab connector plugin ({known})",
                       "unknown_plugin")
    port = values.get("printer_port")
    if port is not None and not (isinstance(port, int) and 0 < port < 65536):
        errors.add("printer_port", "a TCP port between 1 and 65535")
    if port is not None and not values.get("printer_host"):
        errors.add("printer_host", "give the printer's host together with its port", "required")
    if not isinstance(values.get("codes", {}), dict):
        errors.add("codes", "an object of code names to values")
    errors.raise_if_any()


def create_provider(engine: Engine, runtime: PluginRuntime, clinic_id: int, values: dict[str, Any],
                    actor: audit.Actor) -> dict[str, Any]:
    values = {k: v for k, v in values.items() if k in PROVIDER_FIELDS}
    values.setdefault("kind", LabKind.medical)
    _check_provider(values, runtime)
    with transaction(engine) as session:
        if session.exec(select(LabProvider.id).where(LabProvider.clinic_id == clinic_id,
                                                     LabProvider.name == values["name"].strip())).first():
            raise invalid("name", "another lab of this clinic has this name", "duplicate")
        provider = LabProvider(clinic_id=clinic_id, **{**values, "name": values["name"].strip()})
        session.add(provider)
        session.flush()
        audit.record(session, actor, "labs.provider_created", clinic_id=clinic_id, target=f"lab_provider:{provider.id}",
                     data=provider_dict(provider))
        return provider_dict(provider)


def update_provider(engine: Engine, runtime: PluginRuntime, clinic_id: int, provider_id: int,
                    values: dict[str, Any], actor: audit.Actor) -> dict[str, Any]:
    with transaction(engine) as session:
        provider = get_provider(session, clinic_id, provider_id)
        changes = {k: v for k, v in values.items() if k in PROVIDER_FIELDS}
        merged = {**provider_dict(provider), **changes}
        _check_provider(merged, runtime)
        before = provider_dict(provider)
        for key, value in changes.items():
            setattr(provider, key, value.strip() if key == "name" else value)
        session.add(provider)
        session.flush()
        audit.record(session, actor, "labs.provider_changed", clinic_id=clinic_id, target=f"lab_provider:{provider_id}",
                     data={"before": {k: before[k] for k in changes}, "after": changes})
        return provider_dict(provider)


def get_provider(session: Session, clinic_id: int, provider_id: int) -> LabProvider:
    provider = session.get(LabProvider, provider_id)
    if provider is None or provider.clinic_id != clinic_id:
        raise NotFound(f"lab {provider_id} not found in this clinic")
    return provider


def list_providers(session: Session, clinic_id: int, kind: str | None = None) -> list[dict[str, Any]]:
    query = select(LabProvider).where(LabProvider.clinic_id == clinic_id)
    if kind:
        query = query.where(LabProvider.kind == kind)
    return [provider_dict(p) for p in session.exec(query.order_by(col(LabProvider.name)))]


# --- catalogue ------------------------------------------------------------------------------------------


def test_dict(test: LabTest, services: list[str]) -> dict[str, Any]:
    return {"id": test.id, "provider_id": test.provider_id, "code": test.code, "name": test.name,
            "coding_system": test.coding_system, "specimen_type": test.specimen_type, "active": test.active,
            "services": sorted(services)}


def parse_catalogue(content: str, fmt: str) -> list[dict[str, Any]]:
    """Rows of a catalogue file: JSON (a list of objects) or CSV with a header row. Columns: ``code``, ``name``,
    optional ``coding_system``, ``specimen_type``, ``active`` and ``services`` (codes separated by ``;`` or
    ``|`` in CSV, a list in JSON)."""
    if fmt == "json":
        try:
            rows = json.loads(content)
        except ValueError as exc:
            raise invalid("content", f"not valid JSON: {exc}", "invalid_json") from exc
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise invalid("content", "a JSON list of objects with code and name")
        return rows
    if fmt != "csv":
        raise invalid("format", "'csv' or 'json'")
    reader = csv.DictReader(io.StringIO(content.lstrip("\ufeff")))
    if not reader.fieldnames or not {"code", "name"} <= {f.strip().lower() for f in reader.fieldnames}:
        raise invalid("content", "the CSV needs a header row with at least 'code' and 'name'", "missing_columns")
    rows = []
    for raw in reader:
        row: dict[str, Any] = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items()}
        services = row.get("services") or ""
        row["services"] = [s.strip() for s in services.replace("|", ";").split(";") if s.strip()]
        if "active" in row:
            row["active"] = row["active"].lower() not in {"0", "false", "no", "n", ""}
        rows.append(row)
    return rows


def import_catalogue(engine: Engine, clinic_id: int, provider_id: int, rows: list[dict[str, Any]],
                     actor: audit.Actor, *, replace_mappings: bool = False) -> dict[str, Any]:
    """Add or update tests by code, and map them to the services listed per row (bulk first set-up). With
    ``replace_mappings`` a listed test's mappings become exactly those given. All rows or none are stored."""
    if len(rows) > MAX_IMPORT_ROWS:
        raise invalid("rows", f"at most {MAX_IMPORT_ROWS} rows per import", "too_many")
    errors = FieldErrors()
    seen: set[str] = set()
    clean: list[dict[str, Any]] = []
    for i, row in enumerate(rows):
        code = str(row.get("code") or "").strip()
        name = str(row.get("name") or "").strip()
        if not code or len(code) > 50:
            errors.add(f"rows[{i}].code", "a test code of 1 to 50 characters", "required")
        elif code in seen:
            errors.add(f"rows[{i}].code", f"test {code!r} is listed twice", "duplicate")
        seen.add(code)
        if not name or len(name) > 300:
            errors.add(f"rows[{i}].name", "a test name of 1 to 300 characters", "required")
        services = row.get("services") or []
        if isinstance(services, str):
            services = [s.strip() for s in services.replace("|", ";").split(";") if s.strip()]
        if not isinstance(services, list) or any(not isinstance(s, str) or not s or len(s) > 40 for s in services):
            errors.add(f"rows[{i}].services", "a list of service codes of 1 to 40 characters")
            services = []
        specimen = row.get("specimen_type") or None
        if specimen is not None and (not isinstance(specimen, str) or len(specimen) > 20):
            errors.add(f"rows[{i}].specimen_type", "an HL7 specimen type code such as SER")
        clean.append({"code": code, "name": name, "coding_system": str(row.get("coding_system") or "LN")[:20],
                      "specimen_type": specimen, "active": bool(row.get("active", True)),
                      "services": sorted(set(services))})
    errors.raise_if_any()
    created = updated = mapped = 0
    with transaction(engine) as session:
        provider = get_provider(session, clinic_id, provider_id)
        if provider.kind != LabKind.medical:
            raise invalid("provider_id", "only medical labs have a test catalogue", "wrong_kind")
        existing = {t.code: t for t in session.exec(select(LabTest).where(LabTest.provider_id == provider_id))}
        for row in clean:
            test = existing.get(row["code"])
            if test is None:
                test = LabTest(clinic_id=clinic_id, provider_id=provider_id, code=row["code"], name=row["name"],
                               coding_system=row["coding_system"], specimen_type=row["specimen_type"],
                               active=row["active"])
                created += 1
            else:
                test.name, test.coding_system = row["name"], row["coding_system"]
                test.specimen_type, test.active = row["specimen_type"], row["active"]
                updated += 1
            session.add(test)
            session.flush()
            assert test.id is not None
            mapped += _set_services(session, clinic_id, test.id, row["services"], replace=replace_mappings)
        audit.record(session, actor, "labs.catalogue_imported", clinic_id=clinic_id,
                     target=f"lab_provider:{provider_id}",
                     data={"created": created, "updated": updated, "mapped": mapped, "rows": len(clean)})
    return {"created": created, "updated": updated, "mapped": mapped}


def _set_services(session: Session, clinic_id: int, test_id: int, services: list[str], *, replace: bool) -> int:
    current = {m.service_code: m for m in session.exec(select(LabTestService).where(LabTestService.test_id == test_id))}
    added = 0
    for code in services:
        if code not in current:
            session.add(LabTestService(clinic_id=clinic_id, test_id=test_id, service_code=code))
            added += 1
    if replace:
        for code, mapping in current.items():
            if code not in services:
                session.delete(mapping)
    return added


def _test(session: Session, clinic_id: int, test_id: int) -> LabTest:
    test = session.get(LabTest, test_id)
    if test is None or test.clinic_id != clinic_id:
        raise NotFound(f"lab test {test_id} not found in this clinic")
    return test


def map_service(engine: Engine, clinic_id: int, test_id: int, service_code: str, actor: audit.Actor) -> dict[str, Any]:
    """Map one test to one billable service (a new test, or a new service)."""
    code = (service_code or "").strip()
    if not code or len(code) > 40:
        raise invalid("service_code", "a service code of 1 to 40 characters", "required")
    with transaction(engine) as session:
        test = _test(session, clinic_id, test_id)
        added = _set_services(session, clinic_id, test_id, [code], replace=False)
        if added:
            audit.record(session, actor, "labs.service_mapped", clinic_id=clinic_id, target=f"lab_test:{test_id}",
                         data={"service_code": code})
        session.flush()
        return test_dict(test, _services_of(session, [test_id]).get(test_id, []))


def unmap_service(engine: Engine, clinic_id: int, test_id: int, service_code: str, actor: audit.Actor) -> None:
    with transaction(engine) as session:
        _test(session, clinic_id, test_id)
        mapping = session.exec(select(LabTestService).where(LabTestService.test_id == test_id,
                                                            LabTestService.service_code == service_code)).first()
        if mapping is None:
            raise NotFound(f"test {test_id} is not mapped to service {service_code!r}")
        session.delete(mapping)
        audit.record(session, actor, "labs.service_unmapped", clinic_id=clinic_id, target=f"lab_test:{test_id}",
                     data={"service_code": service_code})


def bulk_map(engine: Engine, clinic_id: int, provider_id: int, mappings: list[dict[str, Any]],
             actor: audit.Actor) -> dict[str, Any]:
    """Map many (test code, service code) pairs of one lab at once; every pair must name a known test."""
    with transaction(engine) as session:
        get_provider(session, clinic_id, provider_id)
        tests = {t.code: t for t in session.exec(select(LabTest).where(LabTest.provider_id == provider_id))}
        errors = FieldErrors()
        for i, pair in enumerate(mappings):
            if str(pair.get("test_code") or "") not in tests:
                errors.add(f"mappings[{i}].test_code", f"no test {pair.get('test_code')!r} in this lab's catalogue",
                           "unknown_test")
            code = str(pair.get("service_code") or "").strip()
            if not code or len(code) > 40:
                errors.add(f"mappings[{i}].service_code", "a service code of 1 to 40 characters", "required")
        errors.raise_if_any()
        added = 0
        for pair in mappings:
            test = tests[str(pair["test_code"])]
            assert test.id is not None
            added += _set_services(session, clinic_id, test.id, [str(pair["service_code"]).strip()], replace=False)
            session.flush()
        audit.record(session, actor, "labs.services_mapped", clinic_id=clinic_id, target=f"lab_provider:{provider_id}",
                     data={"pairs": len(mappings), "added": added})
    return {"added": added}


def _services_of(session: Session, test_ids: list[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    if not test_ids:
        return out
    for mapping in session.exec(select(LabTestService).where(col(LabTestService.test_id).in_(test_ids))):
        out.setdefault(mapping.test_id, []).append(mapping.service_code)
    return out


def list_tests(session: Session, clinic_id: int, provider_id: int) -> list[dict[str, Any]]:
    get_provider(session, clinic_id, provider_id)
    tests = list(session.exec(select(LabTest).where(LabTest.provider_id == provider_id).order_by(col(LabTest.code))))
    services = _services_of(session, [t.id for t in tests if t.id is not None])
    return [test_dict(t, services.get(t.id or 0, [])) for t in tests]


def tests_for_services(session: Session, provider_id: int, service_codes: list[str]) -> list[tuple[LabTest, str]]:
    """The active tests of a lab mapped to any of the services, with the service each came from (first wins)."""
    if not service_codes:
        return []
    rows = session.exec(
        select(LabTest, LabTestService.service_code)
        .join(LabTestService, col(LabTestService.test_id) == col(LabTest.id))
        .where(LabTest.provider_id == provider_id, col(LabTest.active).is_(True),
               col(LabTestService.service_code).in_(service_codes))
    ).all()
    order = {code: i for i, code in enumerate(service_codes)}
    picked: dict[str, tuple[LabTest, str]] = {}
    for test, service in sorted(rows, key=lambda r: (order.get(r[1], 0), r[0].code)):
        picked.setdefault(test.code, (test, service))
    return list(picked.values())
