"""A fake FHIR R4 lab server for tests (FastAPI on loopback, with ``FakeServer``'s fault injection).

* ``POST /`` takes a transaction Bundle, validates every resource with the R4B models (400 OperationOutcome when
  invalid), honours ``ifNoneExist`` (an existing match answers ``200 OK`` with its location and creates nothing) and
  conditional ``PUT Type?identifier=...`` updates; test codes that are not LOINC-shaped are refused (422). One
  effect is recorded per new order (requisition).
* ``GET /DiagnosticReport`` with ``_lastUpdated=gt...``, ``_include=DiagnosticReport:result`` and
  ``DiagnosticReport:based-on``, ``_sort=_lastUpdated``, ``_count``: a searchset Bundle.
* ``GET /metadata``: a CapabilityStatement (fhirVersion 4.0.1).
* ``report(placer, results)``: the lab files (or revises) a DiagnosticReport with Observations for an order.
Every request needs ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import re
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError

from plugin_sdk.testing import FakeServer

LOINC = re.compile(r"^\d{1,7}-\d$")
OBS_STATUS = {"preliminary": "preliminary", "final": "final", "corrected": "corrected"}


def outcome(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"resourceType": "OperationOutcome",
                         "issue": [{"severity": "error", "code": code, "diagnostics": message}]}, status,
                        media_type="application/fhir+json")


class FakeFhirLab(FakeServer):
    def __init__(self, token: str = "lab-token") -> None:
        self.token = token
        self.store: dict[str, dict[str, dict[str, Any]]] = {}
        self._state = threading.RLock()
        self._last = datetime.now(UTC)
        super().__init__()

    def plugin_settings(self, **overrides: Any) -> dict[str, Any]:
        return {"base_url": self.base_url, "token": self.token, "timeout_seconds": 0.5, **overrides}

    def reset(self) -> None:
        super().reset()
        with self._state:
            self.store.clear()

    # --- storage ------------------------------------------------------------------------------------------

    def _stamp(self) -> str:
        with self._state:
            at = max(datetime.now(UTC), self._last + timedelta(microseconds=1))
            self._last = at
            return at.isoformat()

    def _put(self, resource: dict[str, Any]) -> dict[str, Any]:
        with self._state:
            kind = resource["resourceType"]
            resource.setdefault("id", uuid.uuid4().hex[:16])
            old = self.store.setdefault(kind, {}).get(resource["id"])
            version = int(old["meta"]["versionId"]) + 1 if old else 1
            resource["meta"] = {"versionId": str(version), "lastUpdated": self._stamp()}
            self.store[kind][resource["id"]] = resource
            return resource

    def _find(self, kind: str, criteria: str) -> dict[str, Any] | None:
        name, _, value = criteria.partition("=")
        system, _, code = value.rpartition("|")
        for resource in self.store.get(kind, {}).values():
            ids = [resource.get("accessionIdentifier")] if name == "accession" else resource.get("identifier") or []
            if any(i and i.get("system") == system and i.get("value") == code for i in ids):
                return resource
        return None

    def service_requests(self, placer: str) -> list[dict[str, Any]]:
        with self._state:
            return [r for r in self.store.get("ServiceRequest", {}).values()
                    if (r.get("requisition") or {}).get("value") == placer]

    def report(self, placer: str, results: list[dict[str, Any]], *, status: str = "final") -> dict[str, Any]:
        """File (or revise) the lab's report for an order. Each result: ``code``, ``value`` (number or text) and
        optionally ``name``, ``units``, ``low``, ``high``, ``flag``, ``status``."""
        with self._state:
            requests = self.service_requests(placer)
            if not requests:
                raise KeyError(f"no order {placer}")
            subject = requests[0]["subject"]
            existing = next((r for r in self.store.get("DiagnosticReport", {}).values()
                             if r["basedOn"][0]["reference"] == f"ServiceRequest/{requests[0]['id']}"), None)
            refs = []
            for result in results:
                obs_id = f"{placer}-{result['code']}".replace("/", "-")
                value = result["value"]
                observation: dict[str, Any] = {
                    "resourceType": "Observation", "id": obs_id, "status": OBS_STATUS[result.get("status", status)],
                    "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                              "code": "laboratory"}]}],
                    "code": {"coding": [{"system": "http://loinc.org", "code": result["code"],
                                         "display": result.get("name")}]},
                    "subject": subject, "effectiveDateTime": datetime.now(UTC).isoformat(timespec="seconds"),
                    "basedOn": [{"reference": f"ServiceRequest/{r['id']}"} for r in requests],
                }
                if isinstance(value, int | float):
                    observation["valueQuantity"] = {"value": value, "unit": result.get("units"),
                                                    "system": "http://unitsofmeasure.org", "code": result.get("units")}
                else:
                    observation["valueString"] = str(value)
                if "low" in result or "high" in result:
                    observation["referenceRange"] = [{
                        **({"low": {"value": result["low"]}} if "low" in result else {}),
                        **({"high": {"value": result["high"]}} if "high" in result else {})}]
                if result.get("flag"):
                    observation["interpretation"] = [{"coding": [{
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                        "code": result["flag"]}]}]
                self._put(observation)
                refs.append({"reference": f"Observation/{obs_id}"})
            if existing is not None:
                known = {r["reference"] for r in existing["result"]}
                refs = existing["result"] + [r for r in refs if r["reference"] not in known]
            report = {
                "resourceType": "DiagnosticReport", "id": existing["id"] if existing else uuid.uuid4().hex[:16],
                "status": "corrected" if status == "corrected" else status,
                "identifier": [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                                     "code": "FILL"}]}, "system": "urn:fake-lab:accession",
                                "value": f"FL-{placer}"}],
                "basedOn": [{"reference": f"ServiceRequest/{r['id']}"} for r in requests],
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "LAB"}]}],
                "code": requests[0]["code"], "subject": subject,
                "effectiveDateTime": datetime.now(UTC).isoformat(timespec="seconds"),
                "issued": datetime.now(UTC).isoformat(), "result": refs,
            }
            return self._put(report)

    # --- the API ----------------------------------------------------------------------------------------------

    def build_app(self) -> FastAPI:
        app = FastAPI(title="Fake FHIR lab")

        @app.middleware("http")
        async def guard(request: Request, call_next: Any) -> Any:
            if request.headers.get("authorization") != f"Bearer {self.token}":
                return outcome(401, "login", "missing or wrong bearer token")
            return await call_next(request)

        @app.get("/metadata")
        def metadata() -> Any:
            return {"resourceType": "CapabilityStatement", "status": "active", "kind": "instance",
                    "fhirVersion": "4.0.1", "format": ["json"], "date": "2026-01-01"}

        @app.post("/")
        async def transaction(request: Request) -> Any:
            body = await request.json()
            try:
                Bundle(**body)
            except ValidationError as exc:
                return outcome(400, "structure", f"invalid Bundle: {exc.errors()[0]['msg']}")
            if body.get("type") != "transaction":
                return outcome(400, "invalid", "only transaction bundles are accepted at the base URL")
            for entry in body.get("entry") or []:
                for coding in (entry["resource"].get("code") or {}).get("coding") or []:
                    if entry["resource"]["resourceType"] == "ServiceRequest" and not LOINC.match(coding["code"]):
                        return outcome(422, "processing", f"test code {coding['code']!r} is not run by this lab")
            with self._state:
                return self._transaction(body)

        @app.get("/DiagnosticReport")
        def search(request: Request) -> Any:
            params = request.query_params
            since = params.get("_lastUpdated", "")
            count = int(params.get("_count", "50"))
            includes = params.getlist("_include")
            with self._state:
                reports = sorted(self.store.get("DiagnosticReport", {}).values(),
                                 key=lambda r: r["meta"]["lastUpdated"])
                if since.startswith("gt"):
                    after = datetime.fromisoformat(since[2:])
                    reports = [r for r in reports if datetime.fromisoformat(r["meta"]["lastUpdated"]) > after]
                reports = reports[:count]
                entries = [{"resource": r, "search": {"mode": "match"}} for r in reports]
                seen: set[str] = set()
                for report in reports:
                    refs = []
                    if "DiagnosticReport:result" in includes:
                        refs += [r["reference"] for r in report.get("result", [])]
                    if "DiagnosticReport:based-on" in includes:
                        refs += [r["reference"] for r in report.get("basedOn", [])]
                    for ref in refs:
                        kind, _, rid = ref.partition("/")
                        found = self.store.get(kind, {}).get(rid)
                        if found and ref not in seen:
                            seen.add(ref)
                            entries.append({"resource": found, "search": {"mode": "include"}})
            return {"resourceType": "Bundle", "type": "searchset", "total": len(reports), "entry": entries}

        return app

    def _transaction(self, body: dict[str, Any]) -> dict[str, Any]:
        local: dict[str, str] = {}
        responses = []
        created_requisitions: set[str] = set()
        for entry in body.get("entry") or []:
            resource = dict(entry["resource"])
            request = entry["request"]
            kind = resource["resourceType"]
            for spec in resource.get("specimen") or []:
                spec["reference"] = local.get(spec["reference"], spec["reference"])
            if request["method"] == "POST":
                found = self._find(kind, request["ifNoneExist"]) if request.get("ifNoneExist") else None
                if found is not None:
                    local[entry.get("fullUrl", "")] = f"{kind}/{found['id']}"
                    responses.append({"response": {"status": "200 OK",
                                                   "location": f"{kind}/{found['id']}/_history/"
                                                               f"{found['meta']['versionId']}"}})
                    continue
                stored = self._put(resource)
                if kind == "ServiceRequest":
                    created_requisitions.add(resource["requisition"]["value"])
                status = "201 Created"
            else:  # conditional update: PUT Type?identifier=system|value
                kind_part, _, criteria = request["url"].partition("?")
                found = self._find(kind_part, criteria)
                if found is None:
                    responses.append({"response": {"status": "404 Not Found"}})
                    continue
                resource["id"] = found["id"]
                stored = self._put(resource)
                status = "200 OK"
            local[entry.get("fullUrl", "")] = f"{kind}/{stored['id']}"
            location = f"{kind}/{stored['id']}/_history/{stored['meta']['versionId']}"
            responses.append({"response": {"status": status, "location": location}})
        for placer in sorted(created_requisitions):
            self.record_effect(placer)
        return {"resourceType": "Bundle", "type": "transaction-response", "entry": responses}
