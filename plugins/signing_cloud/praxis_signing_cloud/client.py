"""The vendor's Open API over httpx: signed requests (``auth``), the ``{"code","message","data"}`` envelope, and
every failure mapped in one place: unreachable, timeouts, 5xx and 429 are ``RetryableError``; a refusal
(``code != 0``) is ``PermanentError`` carrying the vendor's code; a wrong SMS code is reported, not raised.

The paths of the signed-request scheme and the envelope are e签宝 v3's (integrations.md §4.4). The real-name,
seal, intent ("willingness") and hash-signing paths are modelled on its published flow but are assumptions
[I]: the fake in ``fake_vendor`` serves the same ones.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from plugin_sdk.errors import PermanentError, RetryableError
from praxis_signing_cloud import auth

#: vendor codes the client treats specially
WRONG_CODE = 1435011
CODE_LOCKED = 1435012
EXPIRED = 1435013


@dataclass(frozen=True)
class VendorAnswer:
    code: int
    message: str
    data: dict[str, Any]


class CloudClient:
    def __init__(self, base_url: str, app_id: str, secret: str, *, timeout: float,
                 clock_ms: Callable[[], int], transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.app_id = app_id
        self.secret = secret
        self.timeout = timeout
        self.clock_ms = clock_ms
        self._http = httpx.Client(timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> CloudClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, method: str, path: str, payload: dict[str, Any] | None = None, *,
             accept_codes: tuple[int, ...] = ()) -> VendorAnswer:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode() if payload is not None else b""
        url = self.base_url + path
        parts = urlsplit(url)
        headers = auth.request_headers(self.app_id, self.secret, method, parts.path, parts.query, body,
                                       self.clock_ms())
        try:
            response = self._http.request(method, url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise RetryableError(f"the e-signature service did not answer within {self.timeout:g} s",
                                 code="vendor_timeout") from exc
        except httpx.HTTPError as exc:
            raise RetryableError(f"the e-signature service cannot be reached ({type(exc).__name__})",
                                 code="vendor_unreachable") from exc
        if response.status_code == 429:
            retry_after = response.headers.get("retry-after")
            raise RetryableError("the e-signature service is rate limiting", code="rate_limited",
                                 retry_after=float(retry_after) if retry_after and retry_after.isdigit() else None)
        if response.status_code >= 500:
            raise RetryableError(f"the e-signature service failed (HTTP {response.status_code})",
                                 code=f"http_{response.status_code}")
        try:
            envelope = response.json()
            code = int(envelope.get("code", -1))
            message = str(envelope.get("message") or "")
            data = envelope.get("data") or {}
        except (ValueError, TypeError, AttributeError) as exc:
            raise PermanentError(f"the e-signature service answered HTTP {response.status_code} without its JSON "
                                 "envelope", code=f"http_{response.status_code}") from exc
        if code == 0 or code in accept_codes:
            return VendorAnswer(code, message, data if isinstance(data, dict) else {"value": data})
        raise PermanentError(f"the e-signature service refused: {message or 'no reason given'} (code {code})",
                             code=str(code))

    # --- the calls ----------------------------------------------------------------------------------------

    def verify_identity(self, name: str, id_type: str, id_number: str, mobile: str) -> dict[str, Any]:
        return self.call("POST", "/v3/persons/identity-verify", {
            "psnName": name, "psnIDCardType": id_type, "psnIDCardNum": id_number, "psnMobile": mobile}).data

    def upload_seal(self, psn_id: str, image_b64: str, seal_name: str) -> dict[str, Any]:
        return self.call("POST", f"/v3/persons/{psn_id}/seals",
                         {"sealImageBase64": image_b64, "sealName": seal_name}).data

    def start_willingness(self, psn_id: str, auth_type: str, doc_count: int, biz_no: str,
                          notify_url: str | None) -> dict[str, Any]:
        payload: dict[str, Any] = {"authType": auth_type, "docCount": doc_count, "bizNo": biz_no}
        if notify_url:
            payload["notifyUrl"] = notify_url
        return self.call("POST", f"/v3/persons/{psn_id}/willingness", payload).data

    def verify_sms(self, willingness_id: str, code: str) -> VendorAnswer:
        return self.call("POST", f"/v3/willingness/{willingness_id}/sms-verify", {"code": code},
                         accept_codes=(WRONG_CODE, CODE_LOCKED, EXPIRED))

    def willingness(self, willingness_id: str) -> dict[str, Any]:
        return self.call("GET", f"/v3/willingness/{willingness_id}").data

    def hash_sign(self, psn_id: str, seal_id: str, willingness_id: str,
                  docs: list[dict[str, str]]) -> list[dict[str, Any]]:
        data = self.call("POST", "/v3/sign/hash-sign", {"psnId": psn_id, "sealId": seal_id,
                                                         "willingnessId": willingness_id, "docs": docs}).data
        signs = data.get("signs")
        if not isinstance(signs, list) or len(signs) != len(docs):
            raise PermanentError("the e-signature service returned a malformed signing answer", code="bad_answer")
        return signs
