"""A fake of the cloud e-signature vendor on loopback (FastAPI), for tests and demos.

It checks every request the way the vendor does (app id, HMAC-SHA256 signature over stringToSign, Content-MD5,
timestamp within 15 minutes) and keeps the vendor's state:

* people it can verify: ``register_person(name, id_type, id_number, mobile)`` stands for the national records the
  real vendor checks the three factors against; anything else fails the real-name check;
* seals, intent checks ("willingness") with SMS codes sent to the verified phone (read them with ``last_code``) or
  a QR code for a face check (``scan(willingness_id)`` is the doctor's phone passing it, ``scan(..., ok=False)``
  a face that does not match), 5 wrong codes lock a check, checks expire;
* hash signing with a short-lived certificate per person issued by its own CA (``root_pem``), as cloud signing
  services issue event certificates; it refuses without a passed intent check or beyond the announced count.

Callbacks: when an intent check passes or fails and a notify URL was given, the signed callback the vendor would
post is appended to ``callbacks`` (headers, query, body) for the test to deliver. ``FakeServer`` adds the faults
(``stop()`` = vendor down, ``fail_next``, ``hang_next``, ``rate_limit_next``).
"""

from __future__ import annotations

import base64
import itertools
import json
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from plugin_sdk.testing.fake_server import FakeServer
from praxis_signing_cloud import auth
from praxis_signing_cloud.client import CODE_LOCKED, EXPIRED, WRONG_CODE
from praxis_signing_cloud.cms import sign_digest

APP_ID = "7438000001"
APP_SECRET = "fake-app-secret-0123456789abcdef"
MAX_WRONG = 5
WILLINGNESS_SECONDS = 600
CERT_DAYS = 7


@dataclass
class Person:
    psn_id: str
    name: str
    id_type: str
    id_number: str
    mobile: str
    seals: dict[str, bytes] = field(default_factory=dict)
    key: ec.EllipticCurvePrivateKey | None = None
    certificate: x509.Certificate | None = None


@dataclass
class Willingness:
    id: str
    psn_id: str
    auth_type: str
    doc_count: int
    expires_at: datetime
    code: str | None
    notify_url: str | None
    status: str = "PENDING"
    wrong: int = 0
    signed: int = 0


class FakeCloudVendor(FakeServer):
    def __init__(self, *, app_id: str = APP_ID, app_secret: str = APP_SECRET,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.app_id = app_id
        self.app_secret = app_secret
        self.clock = clock or (lambda: datetime.now(UTC))
        self.people: dict[str, Person] = {}  # by id number
        self.willingness: dict[str, Willingness] = {}
        self.sms: list[tuple[str, str]] = []  # (mobile, text)
        self.callbacks: list[tuple[dict[str, str], dict[str, str], bytes]] = []
        self._ids = itertools.count(1)
        self._state = threading.Lock()
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Fake eSign CA"),
                          x509.NameAttribute(NameOID.COMMON_NAME, "Fake eSign Root CA")])
        now = datetime.now(UTC)
        self.ca = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(self.ca_key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - timedelta(days=3650)).not_valid_after(now + timedelta(days=3650))
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                                key_encipherment=False, data_encipherment=False, key_agreement=False,
                                                key_cert_sign=True, crl_sign=True, encipher_only=False,
                                                decipher_only=False), critical=True)
                   .sign(self.ca_key, hashes.SHA256()))
        super().__init__()

    # --- test controls ------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget faults, requests, effects, SMS, callbacks and intent checks (registered people stay)."""
        super().reset()
        with self._state:
            self.sms.clear()
            self.callbacks.clear()
            self.willingness.clear()

    @property
    def root_pem(self) -> str:
        return self.ca.public_bytes(serialization.Encoding.PEM).decode()

    def plugin_settings(self, **overrides: Any) -> dict[str, Any]:
        return {"base_url": self.base_url, "app_id": self.app_id, "app_secret": self.app_secret,
                "timeout_seconds": 2.0, "vendor_roots_pem": self.root_pem, **overrides}

    def register_person(self, name: str, id_number: str, mobile: str, id_type: str = "CRED_PSN_CH_IDCARD") -> None:
        with self._state:
            self.people[id_number] = Person(f"psn-{secrets.token_hex(6)}", name, id_type, id_number, mobile)

    def last_code(self, mobile: str | None = None) -> str:
        with self._state:
            for to, text in reversed(self.sms):
                if mobile is None or to == mobile:
                    return text.split(":")[-1].strip()[:6]
        raise LookupError("no SMS code was sent")

    def scan(self, willingness_id: str, ok: bool = True) -> None:
        """The doctor scans the QR code and the face check passes (or does not match)."""
        with self._state:
            w = self.willingness[willingness_id]
            w.status = "PASSED" if ok else "FAILED"
        self._notify(w, "WILLINGNESS_PASSED" if ok else "WILLINGNESS_FAILED")

    def signed_callback(self, body: dict[str, Any], query: dict[str, str] | None = None,
                        at: datetime | None = None, secret: str | None = None) -> tuple[dict[str, str], bytes]:
        raw = json.dumps(body, separators=(",", ":")).encode()
        timestamp = str(int((at or self.clock()).timestamp() * 1000))
        headers = {"X-Tsign-Open-TIMESTAMP": timestamp, "X-Tsign-Open-SIGNATURE-ALGORITHM": "hmac-sha256",
                   "X-Tsign-Open-SIGNATURE": auth.callback_signature(secret or self.app_secret, timestamp,
                                                                     query or {}, raw)}
        return headers, raw

    def _notify(self, w: Willingness, action: str) -> None:
        if not w.notify_url:
            return
        query = dict(parse_qsl(urlsplit(w.notify_url).query))
        headers, raw = self.signed_callback({"action": action, "willingnessId": w.id, "psnId": w.psn_id}, query)
        with self._state:
            self.callbacks.append((headers, query, raw))

    def _certificate(self, person: Person, at: datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        if person.certificate is None or person.key is None or person.certificate.not_valid_after_utc <= at:
            person.key = ec.generate_private_key(ec.SECP256R1())
            name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                              x509.NameAttribute(NameOID.COMMON_NAME, person.name),
                              x509.NameAttribute(NameOID.SERIAL_NUMBER, person.psn_id)])
            person.certificate = (
                x509.CertificateBuilder().subject_name(name).issuer_name(self.ca.subject)
                .public_key(person.key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(at - timedelta(minutes=5)).not_valid_after(at + timedelta(days=CERT_DAYS))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                             crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
                .sign(self.ca_key, hashes.SHA256()))
        return person.certificate, person.key

    # --- the vendor ------------------------------------------------------------------------------------

    def build_app(self) -> FastAPI:
        app = FastAPI()

        def envelope(code: int, message: str, data: Any = None, status: int = 200) -> JSONResponse:
            return JSONResponse({"code": code, "message": message, "data": data}, status_code=status)

        async def authenticated(request: Request) -> tuple[dict[str, Any], JSONResponse | None]:
            body = await request.body()
            h = request.headers
            if h.get("x-tsign-open-app-id") != self.app_id:
                return {}, envelope(401, "无效的应用 (unknown app id)", status=401)
            if h.get("x-tsign-open-auth-mode") != "Signature":
                return {}, envelope(401, "auth mode must be Signature", status=401)
            stamp = h.get("x-tsign-open-ca-timestamp", "")
            if not stamp.isdigit() or abs(int(stamp) - int(self.clock().timestamp() * 1000)) > 15 * 60 * 1000:
                return {}, envelope(401, "timestamp missing or more than 15 minutes off", status=401)
            if h.get("content-md5") != auth.content_md5(body):
                return {}, envelope(401, "Content-MD5 does not match the body", status=401)
            expected = auth.request_signature(self.app_secret, request.method, request.url.path,
                                              request.url.query, body, h.get("content-type", ""),
                                              h.get("accept", ""))
            if h.get("x-tsign-open-ca-signature") != expected:
                return {}, envelope(401, "签名验证失败 (signature mismatch)", status=401)
            try:
                payload = json.loads(body) if body else {}
            except ValueError:
                return {}, envelope(400, "body is not JSON", status=400)
            return payload, None

        @app.post("/v3/persons/identity-verify")
        async def identity(request: Request) -> JSONResponse:
            payload, refused = await authenticated(request)
            if refused:
                return refused
            with self._state:
                person = self.people.get(str(payload.get("psnIDCardNum")))
            if person is None or person.name != payload.get("psnName") or person.mobile != payload.get("psnMobile") \
                    or person.id_type != payload.get("psnIDCardType"):
                return envelope(1560201, "三要素比对不一致 (name, ID number and phone do not match)")
            return envelope(0, "成功", {"psnId": person.psn_id, "realnameStatus": 1})

        def person_by_id(psn_id: str) -> Person | None:
            return next((p for p in self.people.values() if p.psn_id == psn_id), None)

        @app.post("/v3/persons/{psn_id}/seals")
        async def seal(psn_id: str, request: Request) -> JSONResponse:
            payload, refused = await authenticated(request)
            if refused:
                return refused
            with self._state:
                person = person_by_id(psn_id)
                if person is None:
                    return envelope(1435203, "账号不存在 (unknown person)")
                try:
                    image = base64.b64decode(str(payload.get("sealImageBase64")), validate=True)
                except ValueError:
                    return envelope(1435301, "印章图片格式错误 (not base64)")
                if not (image.startswith(b"\x89PNG") or image.startswith(b"\xff\xd8\xff")):
                    return envelope(1435301, "印章图片格式错误 (PNG or JPEG only)")
                seal_id = f"seal-{next(self._ids)}"
                person.seals[seal_id] = image
            self.record_effect({"seal": seal_id, "psn_id": psn_id})
            return envelope(0, "成功", {"sealId": seal_id})

        @app.post("/v3/persons/{psn_id}/willingness")
        async def start(psn_id: str, request: Request) -> JSONResponse:
            payload, refused = await authenticated(request)
            if refused:
                return refused
            auth_type = payload.get("authType")
            if auth_type not in ("SMS", "FACE"):
                return envelope(1435001, "authType must be SMS or FACE")
            with self._state:
                person = person_by_id(psn_id)
                if person is None:
                    return envelope(1435203, "账号不存在 (unknown person)")
                at = self.clock()
                w = Willingness(id=f"will-{secrets.token_hex(8)}", psn_id=psn_id, auth_type=auth_type,
                                doc_count=int(payload.get("docCount") or 0),
                                expires_at=at + timedelta(seconds=WILLINGNESS_SECONDS),
                                code=f"{secrets.randbelow(10**6):06d}" if auth_type == "SMS" else None,
                                notify_url=payload.get("notifyUrl"))
                self.willingness[w.id] = w
                if w.code is not None:
                    self.sms.append((person.mobile, f"【e签宝】您正在签署 {w.doc_count} 份病历，验证码: {w.code}"))
            data: dict[str, Any] = {"willingnessId": w.id, "expireTime": int(w.expires_at.timestamp() * 1000),
                                    "mobileMasked": person.mobile[:3] + "****" + person.mobile[-4:]}
            if auth_type == "FACE":
                data["qrUrl"] = f"{self.base_url}/h5/face/{w.id}"
            return envelope(0, "成功", data)

        def current(w: Willingness) -> str:
            if w.status == "PENDING" and self.clock() >= w.expires_at:
                w.status = "EXPIRED"
            return w.status

        @app.post("/v3/willingness/{willingness_id}/sms-verify")
        async def verify_sms(willingness_id: str, request: Request) -> JSONResponse:
            payload, refused = await authenticated(request)
            if refused:
                return refused
            with self._state:
                w = self.willingness.get(willingness_id)
                if w is None or w.auth_type != "SMS":
                    return envelope(1435010, "意愿认证不存在 (unknown intent check)")
                state = current(w)
                if state == "LOCKED":
                    return envelope(CODE_LOCKED, "验证码错误次数过多 (locked)", {"remainingAttempts": 0})
                if state == "EXPIRED":
                    return envelope(EXPIRED, "验证码已过期 (expired)")
                if state == "PASSED":
                    return envelope(0, "成功", {"status": "PASSED"})
                if secrets.compare_digest(str(payload.get("code")), w.code or ""):
                    w.status = "PASSED"
                    passed = True
                else:
                    w.wrong += 1
                    passed = False
                    if w.wrong >= MAX_WRONG:
                        w.status = "LOCKED"
                remaining = MAX_WRONG - w.wrong
            if passed:
                self._notify(w, "WILLINGNESS_PASSED")
                return envelope(0, "成功", {"status": "PASSED"})
            if remaining <= 0:
                return envelope(CODE_LOCKED, "验证码错误次数过多 (locked)", {"remainingAttempts": 0})
            return envelope(WRONG_CODE, "验证码错误 (wrong code)", {"remainingAttempts": remaining})

        @app.get("/v3/willingness/{willingness_id}")
        async def state(willingness_id: str, request: Request) -> JSONResponse:
            _, refused = await authenticated(request)
            if refused:
                return refused
            with self._state:
                w = self.willingness.get(willingness_id)
                if w is None:
                    return envelope(1435010, "意愿认证不存在 (unknown intent check)")
                return envelope(0, "成功", {"status": current(w), "authType": w.auth_type})

        @app.post("/h5/face/{willingness_id}")
        async def face_page(willingness_id: str) -> JSONResponse:
            """The page the QR code opens on the doctor's phone; posting to it is the face check passing."""
            if willingness_id not in self.willingness:
                return envelope(1435010, "unknown intent check", status=404)
            self.scan(willingness_id)
            return envelope(0, "人脸识别通过 (face check passed)")

        @app.post("/v3/sign/hash-sign")
        async def hash_sign(request: Request) -> JSONResponse:
            payload, refused = await authenticated(request)
            if refused:
                return refused
            docs = payload.get("docs") or []
            with self._state:
                w = self.willingness.get(str(payload.get("willingnessId")))
                person = person_by_id(str(payload.get("psnId")))
                if w is None or person is None or w.psn_id != person.psn_id:
                    return envelope(1435010, "意愿认证不存在 (unknown intent check)")
                if current(w) != "PASSED":
                    return envelope(1435020, f"意愿认证未通过 (intent check {w.status.lower()})")
                if payload.get("sealId") not in person.seals:
                    return envelope(1435302, "印章不存在 (unknown seal)")
                if not docs or w.signed + len(docs) > w.doc_count:
                    return envelope(1435021, "签署文件数超出意愿范围 (more documents than the intent check covers)")
                at = self.clock().astimezone(UTC).replace(microsecond=0)
                cert, key = self._certificate(person, at)
                signs = []
                for doc in docs:
                    try:
                        digest = base64.b64decode(str(doc["fileHash"]), validate=True)
                    except (KeyError, ValueError):
                        return envelope(1435100, "fileHash must be base64 SHA-256")
                    if len(digest) != 32:
                        return envelope(1435100, "fileHash must be base64 SHA-256")
                    signature = sign_digest(digest, cert, key, [self.ca], at)
                    signs.append({"bizNo": doc.get("bizNo"), "signature": base64.b64encode(signature).decode(),
                                  "certSn": f"{cert.serial_number:x}", "certSubject": cert.subject.rfc4514_string(),
                                  "signTime": int(at.timestamp() * 1000),
                                  "certNotAfter": int(cert.not_valid_after_utc.timestamp() * 1000)})
                w.signed += len(docs)
            for sign in signs:
                self.record_effect({"signed": sign["bizNo"]})
            return envelope(0, "成功", {"signs": signs})

        return app
