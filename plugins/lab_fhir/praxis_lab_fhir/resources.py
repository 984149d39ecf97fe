"""FHIR R4 resources for lab orders and results, built and validated with fhir.resources' R4B models (R4B is R4 for
ServiceRequest, Specimen, DiagnosticReport and Observation).

An order is one transaction Bundle: a Specimen per sample (``accessionIdentifier`` = the accession number) and a
ServiceRequest per test (``identifier`` of type PLAC ``<placer>-<n>``, ``requisition`` = the placer order number,
which is what results are correlated on). Every entry is a conditional create (``ifNoneExist`` on its identifier),
so posting the same order again creates nothing. A cancel is a transaction of conditional updates setting each
ServiceRequest's status to ``revoked``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.specimen import Specimen
from pydantic import ValidationError

from plugin_sdk.providers import LabOrder

LOINC = "http://loinc.org"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
V2_0487 = "http://terminology.hl7.org/CodeSystem/v2-0487"
SNOMED = "http://snomed.info/sct"
SYSTEMS = {"LN": LOINC}
STATUS = {"preliminary": "preliminary", "registered": None, "partial": "preliminary", "final": "final",
          "amended": "corrected", "corrected": "corrected", "appended": "corrected"}


class InvalidResource(ValueError):
    """A resource that does not validate against the R4B model."""


def _validate(model: Any, data: dict[str, Any]) -> dict[str, Any]:
    try:
        return model(**data).model_dump(mode="json", exclude_none=True)
    except ValidationError as exc:
        raise InvalidResource(f"{data.get('resourceType')}: {exc.errors()[0]['msg']} at "
                              f"{'.'.join(str(p) for p in exc.errors()[0]['loc'])}") from exc


def _instant(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds")


def order_bundle(order: LabOrder, identifier_system: str) -> dict[str, Any]:
    patient = order.patient
    subject = {"identifier": {"system": "urn:praxis:patient", "value": str(patient.get("id", ""))},
               "display": " ".join(p for p in (patient.get("family_name"), patient.get("given_name")) if p)}
    requester = ({"identifier": {"system": "urn:praxis:user", "value": str(order.ordering_provider.get("id"))},
                  "display": order.ordering_provider.get("name")} if order.ordering_provider else None)
    entries: list[dict[str, Any]] = []
    specimen_urls = []
    for n, specimen in enumerate(order.specimens, start=1):
        url = f"urn:uuid:specimen-{n}"
        specimen_urls.append(url)
        accession = str(specimen.get("accession_number"))
        resource: dict[str, Any] = {
            "resourceType": "Specimen", "accessionIdentifier": {"system": identifier_system, "value": accession},
            "status": "available", "subject": subject,
            "type": {"coding": [{"system": V2_0487, "code": specimen.get("type") or "SER"}]},
        }
        if specimen.get("collected_at"):
            resource["collection"] = {"collectedDateTime": specimen["collected_at"]}
        entries.append({"fullUrl": url, "resource": _validate(Specimen, resource),
                        "request": {"method": "POST", "url": "Specimen",
                                    "ifNoneExist": f"accession={identifier_system}|{accession}"}})
    status = "active" if order.action == "new" else "revoked"
    for n, test in enumerate(order.tests, start=1):
        value = f"{order.placer_order_number}-{n}"
        resource = {
            "resourceType": "ServiceRequest", "status": status, "intent": "order",
            "identifier": [{"type": {"coding": [{"system": V2_0203, "code": "PLAC"}]}, "system": identifier_system,
                            "value": value}],
            "requisition": {"system": identifier_system, "value": order.placer_order_number},
            "category": [{"coding": [{"system": SNOMED, "code": "108252007", "display": "Laboratory procedure"}]}],
            "code": {"coding": [{"system": SYSTEMS.get(str(test.get("coding_system", "LN")), "urn:praxis:lab-test"),
                                 "code": str(test["code"]), "display": test.get("name")}]},
            "subject": subject, "authoredOn": _instant(order.ordered_at),
            "specimen": [{"reference": url} for url in specimen_urls] if order.action == "new" else None,
        }
        if requester:
            resource["requester"] = requester
        if order.action == "new":
            request = {"method": "POST", "url": "ServiceRequest",
                       "ifNoneExist": f"identifier={identifier_system}|{value}"}
        else:
            request = {"method": "PUT", "url": f"ServiceRequest?identifier={identifier_system}|{value}"}
        entries.append({"fullUrl": f"urn:uuid:service-request-{n}", "resource": _validate(ServiceRequest, resource),
                        "request": request})
    if order.action != "new":
        entries = [e for e in entries if e["resource"]["resourceType"] == "ServiceRequest"]
    bundle = {"resourceType": "Bundle", "type": "transaction",
              "identifier": {"system": "urn:praxis:idempotency", "value": order.idempotency_key}, "entry": entries}
    return _validate(Bundle, bundle)


def _quantity_text(observation: dict[str, Any]) -> tuple[str, str | None, str | None]:
    """value, units, value type."""
    if "valueQuantity" in observation:
        quantity = observation["valueQuantity"]
        value = quantity.get("value")
        text = f"{quantity.get('comparator', '')}{value:g}" if isinstance(value, float) else \
            f"{quantity.get('comparator', '')}{value}"
        return text, quantity.get("unit") or quantity.get("code"), "NM"
    if "valueString" in observation:
        return str(observation["valueString"]), None, "ST"
    if "valueCodeableConcept" in observation:
        concept = observation["valueCodeableConcept"]
        coding = (concept.get("coding") or [{}])[0]
        return str(concept.get("text") or coding.get("display") or coding.get("code") or ""), None, "CE"
    for key in ("valueInteger", "valueBoolean"):
        if key in observation:
            return str(observation[key]), None, "NM" if key == "valueInteger" else "ST"
    return "", None, None


def _range(observation: dict[str, Any]) -> str | None:
    ranges = observation.get("referenceRange") or []
    if not ranges:
        return None
    first = ranges[0]
    if first.get("text"):
        return str(first["text"])
    low, high = first.get("low", {}).get("value"), first.get("high", {}).get("value")
    if low is not None and high is not None:
        return f"{low:g}-{high:g}" if isinstance(low, float) and isinstance(high, float) else f"{low}-{high}"
    if low is not None:
        return f">{low}"
    if high is not None:
        return f"<{high}"
    return None


def parse_search(bundle_json: dict[str, Any], identifier_system: str) -> list[dict[str, Any]]:
    """A searchset of DiagnosticReports with their Observations and ServiceRequests included: one item per report
    ``{"key", "last_updated", "placer_order_number", "filler_order_number", "results": [...]}``. Raises
    ``InvalidResource`` when the bundle or a resource does not validate."""
    bundle = _validate(Bundle, bundle_json)
    by_ref: dict[str, dict[str, Any]] = {}
    reports: list[dict[str, Any]] = []
    for entry in bundle.get("entry") or []:
        resource = entry.get("resource") or {}
        kind = resource.get("resourceType")
        if kind == "DiagnosticReport":
            reports.append(_validate(DiagnosticReport, resource))
        elif kind == "Observation":
            by_ref[f"Observation/{resource.get('id')}"] = _validate(Observation, resource)
        elif kind == "ServiceRequest":
            by_ref[f"ServiceRequest/{resource.get('id')}"] = _validate(ServiceRequest, resource)
    out = []
    for report in reports:
        placer = None
        for based in report.get("basedOn") or []:
            request = by_ref.get(str(based.get("reference")))
            if request and (request.get("requisition") or {}).get("system") == identifier_system:
                placer = request["requisition"]["value"]
                break
        filler = next((i.get("value") for i in report.get("identifier") or []
                       if any(c.get("code") == "FILL" for c in (i.get("type") or {}).get("coding") or [])), None)
        results = []
        for ref in report.get("result") or []:
            observation = by_ref.get(str(ref.get("reference")))
            if observation is None:
                continue
            status = STATUS.get(observation.get("status", ""))
            if status is None:
                continue  # registered / cancelled / entered-in-error: nothing to file
            coding = ((observation.get("code") or {}).get("coding") or [{}])[0]
            value, units, value_type = _quantity_text(observation)
            flags = [c.get("code") for i in observation.get("interpretation") or [] for c in i.get("coding") or []]
            notes = "\n".join(n.get("text", "") for n in observation.get("note") or []) or None
            results.append({"test_code": coding.get("code"), "test_name": coding.get("display"), "value": value,
                            "units": units, "reference_range": _range(observation),
                            "abnormal_flag": "~".join(f for f in flags if f) or None, "status": status,
                            "observed_at": observation.get("effectiveDateTime") or report.get("effectiveDateTime"),
                            "value_type": value_type, "notes": notes})
        meta = report.get("meta") or {}
        out.append({"key": f"{report.get('id')}/{meta.get('versionId', '1')}", "last_updated": meta.get("lastUpdated"),
                    "placer_order_number": placer, "filler_order_number": filler, "results": results})
    return out
