"""The ``LabConnector`` over FHIR R4 REST.

``send_order`` POSTs the order as a transaction Bundle of conditional creates (see ``resources``): a resend after a
timeout finds the resources by identifier and creates nothing, so every network failure, 5xx, 408 and 429 is a
``RetryableError`` (429 with the server's ``Retry-After``); other 4xx are ``PermanentError`` with the
OperationOutcome's diagnostics. The acknowledgement id is the first ServiceRequest's ``Type/id``.

``fetch_results`` searches ``DiagnosticReport?_lastUpdated=gt<cursor>&_include=DiagnosticReport:result&
_include=DiagnosticReport:based-on&_sort=_lastUpdated``, validates what comes back, stores every report version in
the plugin's inbox together with the new cursor (one transaction), then hands out what the core has not confirmed.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from plugin_sdk import PermanentError, PluginContext, RetryableError
from plugin_sdk.providers import LabConnector, LabOrder, LabResult
from praxis_lab_fhir import store
from praxis_lab_fhir.settings import FhirSettings

log = logging.getLogger(__name__)
RECEIPT_PREFIX = "fhir:"
FHIR_JSON = "application/fhir+json"


def _settings(ctx: PluginContext) -> FhirSettings:
    settings = ctx.settings
    if not isinstance(settings, FhirSettings):
        raise PermanentError("the FHIR connector is not configured for this clinic", code="not_configured")
    return settings


class FhirClient:
    def __init__(self, settings: FhirSettings, transport: httpx.BaseTransport | None = None) -> None:
        headers = {"Accept": FHIR_JSON, "User-Agent": "praxis-lab-fhir/0.1"}
        if settings.token is not None and settings.token.get_secret_value():
            headers["Authorization"] = f"Bearer {settings.token.get_secret_value()}"
        self.timeout = settings.timeout_seconds
        self._http = httpx.Client(base_url=settings.base_url.rstrip("/"), timeout=httpx.Timeout(self.timeout),
                                  headers=headers, transport=transport)

    def __enter__(self) -> FhirClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise RetryableError(f"no answer from the lab's FHIR server within {self.timeout:g} s",
                                 code="timeout") from exc
        except httpx.ConnectError as exc:
            raise RetryableError(f"cannot reach the lab's FHIR server: {exc}", code="unreachable") from exc
        except httpx.TransportError as exc:
            raise RetryableError(f"the connection to the lab's FHIR server failed: {exc}", code="network") from exc
        if response.is_success:
            try:
                return response.json()
            except ValueError as exc:
                raise RetryableError(f"the FHIR server answered {response.status_code} without JSON",
                                     code="bad_response") from exc
        status = response.status_code
        message = _outcome(response)
        if status == 429:
            raise RetryableError(f"rate limited by the FHIR server: {message}", retry_after=_retry_after(response),
                                 code="rate_limited")
        if status >= 500 or status == 408:
            raise RetryableError(f"the FHIR server failed ({status}): {message}", code=f"http_{status}")
        raise PermanentError(f"the FHIR server refused the request ({status}): {message}", code=f"http_{status}")


def _outcome(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
        issues = body.get("issue") or []
        return "; ".join(str(i.get("diagnostics") or i.get("code")) for i in issues) or "OperationOutcome"
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("message") or body["error"].get("code"))
    return str(body)[:200]


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when.astimezone(UTC) - datetime.now(UTC)).total_seconds())


def _aware(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


class FhirConnector(LabConnector):
    transport: httpx.BaseTransport | None = None  # tests may swap in httpx.MockTransport

    def client(self, settings: FhirSettings) -> FhirClient:
        return FhirClient(settings, self.transport)

    def send_order(self, ctx: PluginContext, order: LabOrder) -> str:
        # fhir.resources builds hundreds of pydantic models on import (about 0.25 s): load it on first use, not
        # at every app start.
        from praxis_lab_fhir.resources import InvalidResource, order_bundle

        settings = _settings(ctx)
        try:
            bundle = order_bundle(order, settings.identifier_system)
        except InvalidResource as exc:
            raise PermanentError(f"the order does not make valid FHIR resources: {exc}", code="invalid_resource") \
                from exc
        with self.client(settings) as client:
            answer = client.request("POST", "/", json=bundle, headers={"Content-Type": FHIR_JSON})
        if not isinstance(answer, dict) or answer.get("resourceType") != "Bundle":
            raise RetryableError("the FHIR server did not answer the transaction with a Bundle", code="bad_response")
        locations = [(e.get("response") or {}).get("location", "") for e in answer.get("entry") or []]
        requests = [loc.split("/_history")[0] for loc in locations if loc.startswith("ServiceRequest/")]
        if not requests:
            raise RetryableError("the FHIR server's answer names no ServiceRequest", code="bad_response")
        return requests[0]

    def fetch_results(self, ctx: PluginContext) -> list[LabResult]:
        settings = _settings(ctx)
        failure: Exception | None = None
        try:
            self._poll(ctx, settings)
        except (RetryableError, PermanentError) as exc:
            failure = exc
            log.warning("clinic %s: polling the lab's FHIR server failed: %s", ctx.clinic.id, exc)
        with ctx.session() as session:
            rows = store.hand_out(session, ctx.clinic.id, ctx.now())
        if not rows and failure is not None:
            raise failure
        results: list[LabResult] = []
        for row in rows:
            report = row["results"]
            for item in report["results"]:
                results.append(LabResult(
                    placer_order_number=report.get("placer_order_number") or "",
                    filler_order_number=report.get("filler_order_number"), test_code=str(item["test_code"]),
                    value=str(item.get("value") or ""), units=item.get("units"),
                    reference_range=item.get("reference_range"), abnormal_flag=item.get("abnormal_flag"),
                    status=item["status"], observed_at=_aware(item.get("observed_at")), test_name=item.get("test_name"),
                    receipt=f"{RECEIPT_PREFIX}{row['id']}", value_type=item.get("value_type"), notes=item.get("notes")))
        return results

    def _poll(self, ctx: PluginContext, settings: FhirSettings) -> None:
        with ctx.session() as session:
            since = store.get_cursor(session, ctx.clinic.id)
        params: list[tuple[str, str]] = [("_include", "DiagnosticReport:result"),
                                         ("_include", "DiagnosticReport:based-on"), ("_sort", "_lastUpdated"),
                                         ("_count", str(settings.page_size))]
        if since:
            params.append(("_lastUpdated", f"gt{since}"))
        with self.client(settings) as client:
            answer = client.request("GET", "/DiagnosticReport", params=params)
        from praxis_lab_fhir.resources import InvalidResource, parse_search

        try:
            reports = parse_search(answer, settings.identifier_system)
        except InvalidResource as exc:
            raise PermanentError(f"the FHIR server sent an invalid resource: {exc}", code="invalid_resource") from exc
        if not reports:
            return
        newest = max((r["last_updated"] for r in reports if r["last_updated"]), default=since, key=_aware_key)
        with ctx.session() as session:
            for report in reports:
                if report["results"]:
                    store.add_report(session, ctx.clinic.id, report["key"], report, ctx.now())
            if newest:
                store.set_cursor(session, ctx.clinic.id, newest)

    def confirm_results(self, ctx: PluginContext, receipts: list[str]) -> None:
        ids = [int(r[len(RECEIPT_PREFIX):]) for r in receipts
               if r.startswith(RECEIPT_PREFIX) and r[len(RECEIPT_PREFIX):].isdigit()]
        with ctx.session() as session:
            store.confirm(session, ctx.clinic.id, ids, ctx.now())


def _aware_key(value: str | None) -> datetime:
    return _aware(value) or datetime.min.replace(tzinfo=UTC)
