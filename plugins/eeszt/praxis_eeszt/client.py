"""The HTTP client of the (modelled) EESZT service; every error is mapped here, in one place.

* ``EesztUnavailable``: connection refused, timeout, 5xx, 429 or maintenance: try again later.
* ``EesztLoginRequired``: the doctor's session is missing, expired or revoked at EESZT: log in again.
* ``EesztRefused``: a business refusal (not the owner, referral expired, wrong code, ...), with EESZT's code,
  message and HTTP status (404, 409 or 422).

The wire format is the fake's (see README.md): JSON over HTTP, institution authentication by a signature made
with the client certificate, the doctor's session in ``X-EESZT-Session``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import httpx

from praxis_eeszt.certificate import ClientCertificate, signing_string


class EesztError(Exception):
    def __init__(self, message: str, code: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


class EesztUnavailable(EesztError):
    def __init__(self, message: str, code: str = "unavailable", status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message, code, status)
        self.retry_after = retry_after


class EesztLoginRequired(EesztError):
    pass


class EesztRefused(EesztError):
    pass


#: Break-glass reason codes the (modelled) EESZT accepts.
BREAK_GLASS_REASONS = {"EMERGENCY": "life-threatening emergency", "OCCUPATIONAL": "occupational-health examination",
                       "LEGAL": "legal obligation"}
LOGIN_CODES = frozenset({"session_expired", "session_unknown", "session_required"})


class EesztClient:
    def __init__(self, base_url: str, certificate: ClientCertificate, institution_id: str, unit_code: str, *,
                 now: Callable[[], datetime], timeout: float = 10.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.certificate = certificate
        self.institution_id = institution_id
        self.unit_code = unit_code
        self.now = now
        self.timeout = timeout
        self.transport = transport

    # --- transport -------------------------------------------------------------------------------

    def request(self, method: str, path: str, *, body: dict[str, Any] | None = None,
                query: dict[str, Any] | None = None, session: str | None = None,
                idempotency_key: str | None = None) -> dict[str, Any]:
        path = "/v1" + path
        if query:
            path += "?" + urlencode({k: v for k, v in query.items() if v is not None})
        content = json.dumps(body).encode() if body is not None else b""
        date = self.now().isoformat()
        headers = {
            "X-EESZT-Institution": self.institution_id,
            "X-EESZT-Unit": self.unit_code,
            "X-EESZT-Date": date,
            "X-EESZT-Certificate": self.certificate.der_b64(),
            "X-EESZT-Signature": self.certificate.sign(signing_string(method, path, date, content)),
        }
        if body is not None:
            headers["Content-Type"] = "application/json"
        if session:
            headers["X-EESZT-Session"] = session
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        try:
            with httpx.Client(timeout=self.timeout, transport=self.transport) as client:
                response = client.request(method, self.base_url + path, content=content, headers=headers)
        except httpx.TimeoutException:
            raise EesztUnavailable(f"EESZT did not answer within {self.timeout:g} s", "timeout") from None
        except httpx.TransportError as exc:
            raise EesztUnavailable(f"EESZT cannot be reached: {exc}", "unreachable") from None
        return self._answer(response)

    @staticmethod
    def _answer(response: httpx.Response) -> dict[str, Any]:
        try:
            data = response.json() if response.content else {}
        except ValueError:
            data = {}
        if response.is_success:
            return data if isinstance(data, dict) else {"items": data}
        error = data.get("error") if isinstance(data, dict) else None
        code = str(error.get("code")) if isinstance(error, dict) else f"http_{response.status_code}"
        message = str(error.get("message")) if isinstance(error, dict) else response.reason_phrase
        status = response.status_code
        if status == 429 or status >= 500:
            retry_after = response.headers.get("retry-after")
            raise EesztUnavailable(f"EESZT is unavailable ({status} {code}): {message}", code, status,
                                   float(retry_after) if retry_after and retry_after.isdigit() else None)
        if status == 401 and code in LOGIN_CODES:
            raise EesztLoginRequired(message, code, status)
        raise EesztRefused(message, code, status)

    # --- institution -----------------------------------------------------------------------------

    def activate(self, sms_code: str) -> dict[str, Any]:
        return self.request("POST", "/certificates/activate", body={"sms_code": sms_code})

    def ping(self) -> dict[str, Any]:
        return self.request("GET", "/ping")

    # --- doctors' login --------------------------------------------------------------------------

    def login_eid(self, eeszt_user: str) -> dict[str, Any]:
        return self.request("POST", "/auth/eid", body={"user_id": eeszt_user})

    def login_token(self, eeszt_user: str, password: str, otp: str) -> dict[str, Any]:
        return self.request("POST", "/auth/token", body={"user_id": eeszt_user, "password": password, "otp": otp})

    def logout(self, session: str) -> dict[str, Any]:
        return self.request("POST", "/auth/logout", session=session)

    # --- event catalogue and documents (institution-authenticated, naming the doctor) -------------

    def open_event(self, *, external_id: str, taj: str, doctor: str, started_at: str,
                   idempotency_key: str) -> dict[str, Any]:
        return self.request("POST", "/events", idempotency_key=idempotency_key, body={
            "external_id": external_id, "taj": taj, "doctor": doctor, "unit": self.unit_code,
            "kind": "outpatient", "started_at": started_at})

    def close_event(self, event_id: str, *, ended_at: str, idempotency_key: str) -> dict[str, Any]:
        return self.request("POST", f"/events/{event_id}/close", idempotency_key=idempotency_key,
                            body={"ended_at": ended_at})

    def submit_document(self, document: dict[str, Any], *, idempotency_key: str) -> dict[str, Any]:
        return self.request("POST", "/documents", body=document, idempotency_key=idempotency_key)

    # --- a doctor's queries and changes ----------------------------------------------------------

    def documents(self, session: str, taj: str) -> dict[str, Any]:
        return self.request("GET", f"/patients/{taj}/documents", session=session)

    def break_glass(self, session: str, taj: str, reason_code: str, reason: str) -> dict[str, Any]:
        return self.request("POST", f"/patients/{taj}/documents/break-glass", session=session,
                            body={"reason_code": reason_code, "reason": reason})

    def eprofile(self, session: str, taj: str) -> dict[str, Any]:
        return self.request("GET", f"/patients/{taj}/eprofile", session=session)

    def eprofile_create(self, session: str, taj: str, entry: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", f"/patients/{taj}/eprofile", session=session, body=entry)

    def eprofile_update(self, session: str, entry_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        return self.request("PUT", f"/eprofile/{entry_id}", session=session, body=changes)

    def eprofile_delete(self, session: str, entry_id: str) -> dict[str, Any]:
        return self.request("DELETE", f"/eprofile/{entry_id}", session=session)

    def referrals(self, session: str, *, taj: str | None = None, referral_id: str | None = None) -> dict[str, Any]:
        if referral_id:
            return {"referrals": [self.request("GET", f"/referrals/{referral_id}", session=session)]}
        return self.request("GET", "/referrals", session=session, query={"taj": taj})

    def referral_action(self, session: str, referral_id: str, action: str) -> dict[str, Any]:
        return self.request("POST", f"/referrals/{referral_id}/{action}", session=session)
