"""RFC 3161 time-stamping client: build the request with ``asn1crypto.tsp``, POST it, check the answer.

The time-stamp covers the CMS ``SignerInfo.signature`` value (a signature time-stamp, RFC 3161 Appendix A /
CAdES-T): ``messageImprint = SHA-256(signature)``. The token is a CMS SignedData over a ``TSTInfo``.

Checks on the answer (the signature and chain of the token are checked again at verification, with pyHanko):
status granted, a token present, the nonce echoed, the imprint equal to ours, the TSA certificate included
(``certReq``) with the critical time-stamping EKU.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

import httpx
from asn1crypto import cms, tsp

from plugin_sdk.errors import PermanentError, RetryableError

QUERY_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"
FAILURES = ("bad_alg", "bad_request", "bad_data_format", "time_not_available", "unaccepted_policy",
            "unaccepted_extension", "add_info_not_available", "system_failure")


class TimeStampResp(tsp.TimeStampResp):
    """RFC 3161 §2.4.2: ``timeStampToken`` is OPTIONAL (absent when the TSA refuses); asn1crypto requires it."""

    _fields = [("status", tsp.PKIStatusInfo), ("time_stamp_token", cms.ContentInfo, {"optional": True})]


@dataclass(frozen=True)
class TimeStamp:
    token: cms.ContentInfo
    gen_time: datetime
    serial: int
    tsa_subject: str
    policy: str


def request(data: bytes, *, policy: str | None = None, nonce: int | None = None) -> tsp.TimeStampReq:
    values: dict[str, object] = {
        "version": "v1",
        "message_imprint": {"hash_algorithm": {"algorithm": "sha256"}, "hashed_message": hashlib.sha256(data).digest()},
        "nonce": nonce if nonce is not None else secrets.randbits(63),
        "cert_req": True,
    }
    if policy:
        values["req_policy"] = policy
    return tsp.TimeStampReq(values)


def token_info(token: cms.ContentInfo) -> tsp.TSTInfo:
    signed = token["content"]
    content_type = signed["encap_content_info"]["content_type"].native
    if token["content_type"].native != "signed_data" or content_type != "tst_info":
        raise ValueError("not a time-stamp token (CMS SignedData over TSTInfo)")
    return signed["encap_content_info"]["content"].parsed


def tsa_certificate(token: cms.ContentInfo) -> object | None:
    signed = token["content"]
    sid = signed["signer_infos"][0]["sid"]
    for choice in signed["certificates"] or []:
        cert = choice.chosen
        if sid.name == "issuer_and_serial_number":
            wanted = sid.chosen
            if cert.issuer == wanted["issuer"] and cert.serial_number == wanted["serial_number"].native:
                return cert
        elif cert.key_identifier == sid.chosen.native:
            return cert
    return None


def has_time_stamping_eku(cert: object) -> bool:
    eku = getattr(cert, "extended_key_usage_value", None)
    if eku is None or eku.native != ["time_stamping"]:
        return False
    return "extended_key_usage" in getattr(cert, "critical_extensions", set())


def stamp(url: str, data: bytes, *, timeout: float, policy: str | None = None,
          client: httpx.Client | None = None) -> TimeStamp:
    """Get a time-stamp token over ``data`` from the TSA at ``url``.

    Raises ``RetryableError`` when the TSA cannot be reached or answers 5xx/429, ``PermanentError`` when it refuses
    (with the PKIFailureInfo) or its answer does not match the request.
    """
    req = request(data, policy=policy)
    own = client is None
    http = client or httpx.Client(timeout=timeout)
    try:
        response = http.post(url, content=req.dump(), headers={"Content-Type": QUERY_TYPE}, timeout=timeout)
    except httpx.TimeoutException as exc:
        raise RetryableError(f"the time-stamp authority did not answer within {timeout:g} s",
                             code="tsa_timeout") from exc
    except httpx.HTTPError as exc:
        raise RetryableError(f"the time-stamp authority at {url} cannot be reached ({type(exc).__name__})",
                             code="tsa_unreachable") from exc
    finally:
        if own:
            http.close()
    if response.status_code == 429 or response.status_code >= 500:
        retry_after = response.headers.get("retry-after")
        raise RetryableError(f"the time-stamp authority answered HTTP {response.status_code}",
                             retry_after=float(retry_after) if retry_after and retry_after.isdigit() else None,
                             code=f"tsa_http_{response.status_code}")
    if response.status_code != 200:
        raise PermanentError(f"the time-stamp authority refused the request (HTTP {response.status_code})",
                             code=f"tsa_http_{response.status_code}")
    return check_response(req, response.content)


def check_response(req: tsp.TimeStampReq, body: bytes) -> TimeStamp:
    try:
        resp = TimeStampResp.load(body)
        status = resp["status"]["status"].native
    except (ValueError, TypeError, KeyError) as exc:
        raise PermanentError(f"the time-stamp authority's answer is not a TimeStampResp ({exc})",
                             code="tsa_bad_response") from exc
    if status not in ("granted", "granted_with_mods"):
        fail = resp["status"]["fail_info"]
        reasons = sorted(fail.native) if fail.native else []
        text = resp["status"]["status_string"].native if resp["status"]["status_string"].native else []
        raise PermanentError(f"the time-stamp authority refused: {status} ({', '.join(reasons) or 'no reason'}"
                             f"{'; ' + ' '.join(text) if text else ''})", code="tsa_rejected")
    token = resp["time_stamp_token"]
    if not isinstance(token, cms.ContentInfo) or token.native is None:
        raise PermanentError("the time-stamp authority granted the request but sent no token", code="tsa_bad_response")
    try:
        info = token_info(token)
    except (ValueError, KeyError) as exc:
        raise PermanentError(f"the time-stamp token is malformed: {exc}", code="tsa_bad_response") from exc
    if info["nonce"].native != req["nonce"].native:
        raise PermanentError("the time-stamp answers another request (nonce differs)", code="tsa_bad_response")
    if info["message_imprint"].dump() != req["message_imprint"].dump():
        raise PermanentError("the time-stamp covers other data (message imprint differs)", code="tsa_bad_response")
    cert = tsa_certificate(token)
    if cert is None:
        raise PermanentError("the time-stamp token does not include the TSA's certificate", code="tsa_bad_response")
    if not has_time_stamping_eku(cert):
        raise PermanentError("the TSA certificate lacks the critical time-stamping extended key usage",
                             code="tsa_bad_certificate")
    return TimeStamp(token=token, gen_time=info["gen_time"].native, serial=info["serial_number"].native,
                     tsa_subject=_common_name(cert.subject), policy=info["policy"].dotted)


def _common_name(name: object) -> str:
    native = getattr(name, "native", None)
    common = native.get("common_name") if isinstance(native, dict) else None
    return str(common) if common else str(getattr(name, "human_friendly", name))
