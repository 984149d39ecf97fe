"""A fake EESZT on loopback: an explicit, configurable model of what the plugin relies on (see README.md).

EESZT's interface specification is given only to accredited vendors, so this is not the real wire protocol; it
models the public concepts (integrations research, section 1) with one rule per refusal:

* **Institutions** have a 6-digit id, 9-digit units and certificates issued by the portal (``issue_certificate``)
  that must be activated with the code sent by SMS before any other call is accepted.
* **Every call** is authenticated like mutual TLS: certificate + signature over method, path, date and body;
  refused if the signature is wrong, the date is off by more than ``max_clock_skew``, the certificate is not
  valid now, unknown, not activated, or activated for another institution.
* **Doctors** (``add_doctor``) log in with the eID card (the test puts the card in the reader with its PIN:
  ``POST /v1/card-reader/present``, or ``present_card``) or with password + TOTP one-time code (pyotp; a code of a
  time step already used is refused as a replay). A session lasts ``session_ttl``.
* **Event catalogue**: events opened per ``external_id`` (idempotent), closed once; documents need an event of
  the same institution.
* **Documents**: restricted ones (patient's self-determination, DÖR) are hidden from the list, which says how
  many; break-glass needs a reason code from ``BREAK_GLASS_REASONS`` and a reason text, and is logged.
* **eProfile**: entries with id, version, owner institution and status; an update makes version n+1; deleting
  (and, with ``owner_only_updates``, changing) another institution's entry is refused.
* **e-referrals**: issued -> reserved (by one institution) -> used; release returns it to issued. Expired,
  reserved-by-another and already-used referrals are refused.
* **Downtime**: ``maintenance = True`` answers 503 with Retry-After; the ``FakeServer`` faults (``fail_next``,
  ``hang_next``, ``stop``) work as everywhere.
"""

from __future__ import annotations

import base64
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyotp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from plugin_sdk.testing import FakeServer
from praxis_eeszt.certificate import signing_string, verify
from praxis_eeszt.client import BREAK_GLASS_REASONS


class Refusal(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


@dataclass
class Institution:
    id: str
    units: set[str]
    sms_codes: dict[str, str] = field(default_factory=dict)  # certificate fingerprint -> code sent by SMS
    active: set[str] = field(default_factory=set)  # activated certificate fingerprints


@dataclass
class FakeDoctor:
    user_id: str  # "O" + stamp number
    password: str
    totp_secret: str
    pin: str
    last_otp_step: int = -1


@dataclass
class Session:
    token: str
    user_id: str
    institution: str
    method: str
    expires_at: datetime


@dataclass
class Event:
    id: str
    institution: str
    external_id: str
    taj: str
    doctor: str
    unit: str
    started_at: str
    status: str = "open"
    ended_at: str | None = None


@dataclass
class Document:
    id: str
    taj: str
    institution: str
    type: str
    title: str
    text: str = ""
    event_id: str | None = None
    doctor: str | None = None
    restricted: bool = False
    created_at: str = ""


@dataclass
class EProfileEntry:
    id: str
    taj: str
    category: str
    description: str
    code: str | None
    owner: str
    version: int = 1
    status: str = "active"
    history: list[dict[str, Any]] = field(default_factory=list)

    def out(self) -> dict[str, Any]:
        return {"id": self.id, "category": self.category, "description": self.description, "code": self.code,
                "owner_institution": self.owner, "version": self.version, "status": self.status}


@dataclass
class Referral:
    id: str
    taj: str
    specialty: str
    diagnosis: str  # BNO (ICD-10-HU) code
    valid_until: date
    issued_by: str
    status: str = "issued"  # issued, reserved, used
    reserved_by: str | None = None
    used_by: str | None = None

    def out(self) -> dict[str, Any]:
        return {"id": self.id, "taj": self.taj, "specialty": self.specialty, "diagnosis": self.diagnosis,
                "valid_until": self.valid_until.isoformat(), "issued_by": self.issued_by, "status": self.status,
                "reserved_by": self.reserved_by, "used_by": self.used_by}


@dataclass
class IssuedCertificate:
    """What the EESZT portal hands an institution: the file (PEM or PKCS#12) and the code sent by SMS."""

    pem: bytes
    pkcs12: bytes
    pkcs12_password: str
    sms_code: str
    fingerprint: str


class FakeEeszt(FakeServer):
    def __init__(self, *, clock: Callable[[], datetime] | None = None, session_ttl: timedelta = timedelta(hours=8),
                 max_clock_skew: timedelta = timedelta(minutes=5), owner_only_updates: bool = True) -> None:
        self.clock = clock or (lambda: datetime.now(UTC))
        self.session_ttl = session_ttl
        self.max_clock_skew = max_clock_skew
        self.owner_only_updates = owner_only_updates
        self.maintenance = False
        self.institutions: dict[str, Institution] = {}
        self.doctors: dict[str, FakeDoctor] = {}
        self.card_reader: dict[str, tuple[str, str]] = {}  # institution -> (user id, pin) of the card inserted
        self.sessions: dict[str, Session] = {}
        self.events: dict[str, Event] = {}
        self.documents: dict[str, Document] = {}
        self.eprofile: dict[str, EProfileEntry] = {}
        self.referrals: dict[str, Referral] = {}
        self.access_log: list[dict[str, Any]] = []
        self.logins: list[dict[str, Any]] = []
        self._idempotent: dict[tuple[str, str], dict[str, Any]] = {}
        self._model_lock = threading.RLock()
        self._seq = 0
        super().__init__()

    # --- set-up (what the portal and the patients did before) -------------------------------------

    def add_institution(self, institution_id: str, *units: str) -> Institution:
        self.institutions[institution_id] = Institution(institution_id, set(units))
        return self.institutions[institution_id]

    def issue_certificate(self, institution_id: str, *, valid_from: datetime | None = None,
                          valid_for: timedelta = timedelta(days=365), name: str = "Test Rendelő") -> IssuedCertificate:
        key = ec.generate_private_key(ec.SECP256R1())
        start = valid_from or self.clock() - timedelta(days=1)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} {institution_id}"),
                             x509.NameAttribute(NameOID.ORGANIZATION_NAME, name)])
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Fake EESZT WAF-SSL CA")]))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + valid_for).sign(key, hashes.SHA256()))
        password = secrets.token_urlsafe(8)
        p12 = pkcs12.serialize_key_and_certificates(
            b"eeszt", key, cert, None, serialization.BestAvailableEncryption(password.encode()))
        pem = cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        fingerprint = cert.fingerprint(hashes.SHA256()).hex()
        code = f"{secrets.randbelow(10**6):06d}"
        self.institutions[institution_id].sms_codes[fingerprint] = code
        return IssuedCertificate(pem, p12, password, code, fingerprint)

    def add_doctor(self, stamp_number: str, *, password: str = "jelszo-123", pin: str = "1234") -> FakeDoctor:
        doctor = FakeDoctor(f"O{stamp_number}", password, pyotp.random_base32(), pin)
        self.doctors[doctor.user_id] = doctor
        return doctor

    def otp(self, stamp_number: str, at: datetime | None = None) -> str:
        """The code the doctor's mobilToken shows at ``at``."""
        return pyotp.TOTP(self.doctors[f"O{stamp_number}"].totp_secret).at(at or self.clock())

    def present_card(self, institution_id: str, stamp_number: str, pin: str) -> None:
        """The doctor puts the eID card into the reader and types the PIN (what the eSzemélyi Kliens does)."""
        with self._model_lock:
            self.card_reader[institution_id] = (f"O{stamp_number}", pin)

    def add_document(self, taj: str, *, title: str, institution: str = "999999", type: str = "outpatient_report",
                     restricted: bool = False, text: str = "") -> Document:
        doc = Document(self._id("DOC"), taj, institution, type, title, text, restricted=restricted,
                       created_at=self.clock().isoformat())
        self.documents[doc.id] = doc
        return doc

    def add_eprofile_entry(self, taj: str, *, category: str, description: str, owner: str,
                           code: str | None = None) -> EProfileEntry:
        entry = EProfileEntry(self._id("EP"), taj, category, description, code, owner)
        self.eprofile[entry.id] = entry
        return entry

    def add_referral(self, taj: str, *, specialty: str = "fogászat", diagnosis: str = "K0210",
                     valid_until: date | None = None, issued_by: str = "111111") -> Referral:
        referral = Referral(self._id("BEU"), taj, specialty, diagnosis,
                            valid_until or (self.clock().date() + timedelta(days=90)), issued_by)
        self.referrals[referral.id] = referral
        return referral

    def _id(self, prefix: str) -> str:
        with self._model_lock:
            self._seq += 1
            return f"{prefix}-{self._seq:06d}"

    # --- the service -------------------------------------------------------------------------------

    def build_app(self) -> FastAPI:
        app = FastAPI(title="Fake EESZT")
        fake = self

        @app.exception_handler(Refusal)
        async def _refused(_: Request, exc: Refusal) -> JSONResponse:
            return JSONResponse({"error": {"code": exc.code, "message": exc.message}}, exc.status,
                                headers=exc.headers)

        async def institution(request: Request) -> tuple[str, dict[str, Any]]:
            """Check maintenance and the institution's certificate and signature; the institution id and body."""
            if fake.maintenance:
                raise Refusal(503, "maintenance", "EESZT is under maintenance", {"Retry-After": "600"})
            body = await request.body()
            return fake._authenticate(request, body), (await request.json() if body else {})

        def session_of(request: Request, inst: str) -> Session:
            token = request.headers.get("x-eeszt-session")
            if not token:
                raise Refusal(401, "session_required", "this needs a doctor's EESZT login")
            found = fake.sessions.get(token)
            if found is None or found.institution != inst:
                raise Refusal(401, "session_unknown", "unknown EESZT session; log in again")
            if fake.clock() >= found.expires_at:
                raise Refusal(401, "session_expired", "the EESZT session has expired; log in again")
            return found

        def idempotent(request: Request, inst: str, make: Callable[[], dict[str, Any]]) -> dict[str, Any]:
            key = request.headers.get("idempotency-key")
            with fake._model_lock:
                if key and (inst, key) in fake._idempotent:
                    return fake._idempotent[(inst, key)]
                answer = make()
                if key:
                    fake._idempotent[(inst, key)] = answer
                return answer

        @app.post("/v1/certificates/activate")
        async def activate(request: Request) -> dict[str, Any]:
            body = await request.body()
            cert, inst_id = fake._certificate(request, body, require_active=False)
            data = await request.json() if body else {}
            fingerprint = cert.fingerprint(hashes.SHA256()).hex()
            inst = fake.institutions[inst_id]
            expected = inst.sms_codes.get(fingerprint)
            if expected is None:
                raise Refusal(422, "unknown_certificate", "this certificate was not issued to this institution")
            if str(data.get("sms_code", "")).strip() != expected:
                raise Refusal(422, "wrong_activation_code", "the activation code does not match the one sent by SMS")
            inst.active.add(fingerprint)
            fake.record_effect(("activated", inst_id, fingerprint))
            return {"status": "active", "institution": inst_id, "fingerprint": fingerprint}

        @app.get("/v1/ping")
        async def ping(request: Request) -> dict[str, Any]:
            inst, _ = await institution(request)
            return {"status": "ok", "institution": inst, "unit": request.headers.get("x-eeszt-unit"),
                    "time": fake.clock().isoformat()}

        @app.post("/v1/card-reader/present")
        async def present(request: Request) -> dict[str, Any]:
            data = await request.json()
            fake.present_card(str(data["institution"]), str(data["stamp_number"]), str(data["pin"]))
            return {"status": "card present"}

        @app.post("/v1/auth/eid")
        async def login_eid(request: Request) -> dict[str, Any]:
            inst, data = await institution(request)
            user = str(data.get("user_id", ""))
            with fake._model_lock:
                card = fake.card_reader.pop(inst, None)
            if card is None or card[0] != user:
                raise Refusal(422, "no_card", f"no eID card of {user} is in the card reader")
            doctor = fake.doctors.get(user)
            if doctor is None:
                raise Refusal(422, "unknown_user", f"{user} is not an EESZT user")
            if card[1] != doctor.pin:
                raise Refusal(422, "wrong_pin", "the eID card's PIN is wrong")
            return fake._new_session(inst, user, "eid")

        @app.post("/v1/auth/token")
        async def login_token(request: Request) -> dict[str, Any]:
            inst, data = await institution(request)
            user = str(data.get("user_id", ""))
            doctor = fake.doctors.get(user)
            if doctor is None or not secrets.compare_digest(str(data.get("password", "")), doctor.password):
                raise Refusal(422, "bad_credentials", "wrong EESZT user or password")
            totp = pyotp.TOTP(doctor.totp_secret)
            now = fake.clock()
            otp = str(data.get("otp", ""))
            step = next((s for s in (totp.timecode(now) + d for d in (0, -1, 1))
                         if secrets.compare_digest(totp.generate_otp(s), otp)), None)
            if step is None:
                raise Refusal(422, "bad_otp", "the one-time code is wrong or too old")
            with fake._model_lock:
                if step <= doctor.last_otp_step:
                    raise Refusal(422, "otp_replayed", "this one-time code was already used; wait for the next one")
                doctor.last_otp_step = int(step)
            return fake._new_session(inst, user, "token")

        @app.post("/v1/auth/logout")
        async def logout(request: Request) -> dict[str, Any]:
            inst, _ = await institution(request)
            found = session_of(request, inst)
            fake.sessions.pop(found.token, None)
            return {"status": "logged out"}

        @app.post("/v1/events")
        async def open_event(request: Request) -> dict[str, Any]:
            inst, data = await institution(request)
            if data.get("unit") not in fake.institutions[inst].units:
                raise Refusal(422, "unknown_unit", f"unit {data.get('unit')} does not belong to institution {inst}")
            if str(data.get("doctor", "")) not in fake.doctors:
                raise Refusal(422, "unknown_doctor", f"{data.get('doctor')} is not a registered doctor")

            def make() -> dict[str, Any]:
                existing = next((e for e in fake.events.values()
                                 if e.institution == inst and e.external_id == data["external_id"]), None)
                if existing is None:
                    existing = Event(fake._id("EKAT"), inst, str(data["external_id"]), str(data["taj"]),
                                     str(data["doctor"]), str(data["unit"]), str(data["started_at"]))
                    fake.events[existing.id] = existing
                    fake.record_effect(("event_opened", existing.id))
                return {"event_id": existing.id, "status": existing.status}

            return idempotent(request, inst, make)

        @app.post("/v1/events/{event_id}/close")
        async def close_event(event_id: str, request: Request) -> dict[str, Any]:
            inst, data = await institution(request)
            event = fake.events.get(event_id)
            if event is None or event.institution != inst:
                raise Refusal(404, "unknown_event", f"no event {event_id} of this institution")
            with fake._model_lock:
                if event.status != "closed":
                    event.status, event.ended_at = "closed", str(data.get("ended_at"))
                    fake.record_effect(("event_closed", event.id))
            return {"event_id": event.id, "status": event.status}

        @app.post("/v1/documents")
        async def submit(request: Request) -> dict[str, Any]:
            inst, data = await institution(request)
            event = fake.events.get(str(data.get("event_id")))
            if event is None or event.institution != inst:
                raise Refusal(422, "unknown_event", "a document needs an event of this institution")
            if not str(data.get("text", "")).strip():
                raise Refusal(422, "empty_document", "the document has no text")

            def make() -> dict[str, Any]:
                doc = Document(fake._id("DOC"), event.taj, inst, str(data.get("type")), str(data.get("title")),
                               str(data.get("text")), event.id, str(data.get("doctor")),
                               created_at=fake.clock().isoformat())
                fake.documents[doc.id] = doc
                fake.record_effect(("document", doc.id))
                return {"document_id": doc.id}

            return idempotent(request, inst, make)

        def doc_out(d: Document) -> dict[str, Any]:
            return {"id": d.id, "type": d.type, "title": d.title, "institution": d.institution,
                    "created_at": d.created_at, "restricted": d.restricted, "event_id": d.event_id}

        @app.get("/v1/patients/{taj}/documents")
        async def documents(taj: str, request: Request) -> dict[str, Any]:
            inst, _ = await institution(request)
            who = session_of(request, inst)
            mine = [d for d in fake.documents.values() if d.taj == taj]
            hidden = sum(d.restricted for d in mine)
            fake.access_log.append({"taj": taj, "user": who.user_id, "institution": inst, "break_glass": False})
            return {"documents": [doc_out(d) for d in mine if not d.restricted], "hidden": hidden,
                    "notice": f"DÖR-protected, {hidden} documents hidden" if hidden else None}

        @app.post("/v1/patients/{taj}/documents/break-glass")
        async def break_glass(taj: str, request: Request) -> dict[str, Any]:
            inst, data = await institution(request)
            who = session_of(request, inst)
            if data.get("reason_code") not in BREAK_GLASS_REASONS:
                raise Refusal(422, "reason_code_required",
                              f"break-glass needs a reason code: {', '.join(BREAK_GLASS_REASONS)}")
            if len(str(data.get("reason", "")).strip()) < 10:
                raise Refusal(422, "reason_required", "break-glass needs the reason in words")
            mine = [d for d in fake.documents.values() if d.taj == taj]
            fake.access_log.append({"taj": taj, "user": who.user_id, "institution": inst, "break_glass": True,
                                    "reason_code": data["reason_code"], "reason": data["reason"]})
            fake.record_effect(("break_glass", taj, who.user_id))
            return {"documents": [doc_out(d) for d in mine], "hidden": 0, "notice": None}

        @app.get("/v1/patients/{taj}/eprofile")
        async def eprofile(taj: str, request: Request) -> dict[str, Any]:
            inst, _ = await institution(request)
            session_of(request, inst)
            return {"entries": [e.out() for e in fake.eprofile.values() if e.taj == taj and e.status == "active"]}

        @app.post("/v1/patients/{taj}/eprofile")
        async def eprofile_create(taj: str, request: Request) -> dict[str, Any]:
            inst, data = await institution(request)
            session_of(request, inst)
            if not str(data.get("description", "")).strip() or not data.get("category"):
                raise Refusal(422, "incomplete_entry", "an eProfile entry needs a category and a description")
            entry = EProfileEntry(fake._id("EP"), taj, str(data["category"]), str(data["description"]),
                                  data.get("code"), inst)
            fake.eprofile[entry.id] = entry
            fake.record_effect(("eprofile_created", entry.id))
            return entry.out()

        def own_entry(entry_id: str, inst: str, doing: str, owner_only: bool) -> EProfileEntry:
            entry = fake.eprofile.get(entry_id)
            if entry is None or entry.status != "active":
                raise Refusal(404, "unknown_entry", f"no eProfile entry {entry_id}")
            if owner_only and entry.owner != inst:
                raise Refusal(409, "not_owner", f"only the institution that recorded it ({entry.owner}) may "
                                                f"{doing} this eProfile entry")
            return entry

        @app.put("/v1/eprofile/{entry_id}")
        async def eprofile_update(entry_id: str, request: Request) -> dict[str, Any]:
            inst, data = await institution(request)
            session_of(request, inst)
            with fake._model_lock:
                entry = own_entry(entry_id, inst, "change", fake.owner_only_updates)
                entry.history.append(entry.out())
                entry.description = str(data.get("description", entry.description))
                entry.code = data.get("code", entry.code)
                entry.version += 1
            fake.record_effect(("eprofile_updated", entry.id, entry.version))
            return entry.out()

        @app.delete("/v1/eprofile/{entry_id}")
        async def eprofile_delete(entry_id: str, request: Request) -> dict[str, Any]:
            inst, _ = await institution(request)
            session_of(request, inst)
            with fake._model_lock:
                entry = own_entry(entry_id, inst, "delete", True)
                entry.status = "deleted"
            fake.record_effect(("eprofile_deleted", entry.id))
            return entry.out()

        @app.get("/v1/referrals")
        async def referrals(request: Request, taj: str) -> dict[str, Any]:
            inst, _ = await institution(request)
            session_of(request, inst)
            return {"referrals": [r.out() for r in fake.referrals.values() if r.taj == taj]}

        def referral(referral_id: str) -> Referral:
            found = fake.referrals.get(referral_id)
            if found is None:
                raise Refusal(404, "unknown_referral", f"no e-referral {referral_id}")
            return found

        @app.get("/v1/referrals/{referral_id}")
        async def referral_get(referral_id: str, request: Request) -> dict[str, Any]:
            inst, _ = await institution(request)
            session_of(request, inst)
            return referral(referral_id).out()

        @app.post("/v1/referrals/{referral_id}/{action}")
        async def referral_action(referral_id: str, action: str, request: Request) -> dict[str, Any]:
            inst, _ = await institution(request)
            session_of(request, inst)
            with fake._model_lock:
                ref = referral(referral_id)
                fake._referral_step(ref, action, inst)
            fake.record_effect((f"referral_{action}", ref.id))
            return ref.out()

        return app

    # --- rules -------------------------------------------------------------------------------------

    def _referral_step(self, ref: Referral, action: str, inst: str) -> None:
        if action not in ("reserve", "use", "release"):
            raise Refusal(404, "unknown_action", f"no referral action {action!r}")
        if ref.status == "used":
            raise Refusal(409, "already_used", f"the e-referral was already used (by institution {ref.used_by})")
        if action != "release" and self.clock().date() > ref.valid_until:
            raise Refusal(409, "expired", f"the e-referral expired on {ref.valid_until.isoformat()}")
        if ref.status == "reserved" and ref.reserved_by != inst:
            raise Refusal(409, "reserved_by_other", f"the e-referral is reserved by institution {ref.reserved_by}")
        if action == "reserve":
            ref.status, ref.reserved_by = "reserved", inst
        elif action == "use":
            ref.status, ref.used_by, ref.reserved_by = "used", inst, None
        else:
            if ref.status != "reserved":
                raise Refusal(409, "not_reserved", "the e-referral is not reserved by this institution")
            ref.status, ref.reserved_by = "issued", None

    def _new_session(self, inst: str, user: str, method: str) -> dict[str, Any]:
        session = Session(secrets.token_urlsafe(24), user, inst, method, self.clock() + self.session_ttl)
        with self._model_lock:
            self.sessions[session.token] = session
            self.logins.append({"user": user, "method": method, "institution": inst})
        return {"session": session.token, "user_id": user, "expires_at": session.expires_at.isoformat()}

    def _certificate(self, request: Request, body: bytes, *, require_active: bool) -> tuple[x509.Certificate, str]:
        inst_id = request.headers.get("x-eeszt-institution", "")
        inst = self.institutions.get(inst_id)
        if inst is None:
            raise Refusal(403, "unknown_institution", f"institution {inst_id!r} is not connected to EESZT")
        try:
            cert = x509.load_der_x509_certificate(base64.b64decode(request.headers.get("x-eeszt-certificate", "")))
        except ValueError:
            raise Refusal(403, "no_certificate", "the client certificate is missing or unreadable") from None
        date = request.headers.get("x-eeszt-date", "")
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if not verify(cert, signing_string(request.method, path, date, body),
                      request.headers.get("x-eeszt-signature", "")):
            raise Refusal(403, "bad_signature", "the request signature does not match the certificate's key")
        try:
            sent = datetime.fromisoformat(date)
        except ValueError:
            raise Refusal(403, "bad_date", "X-EESZT-Date must be an ISO 8601 time") from None
        now = self.clock()
        if sent.tzinfo is None or abs(now - sent) > self.max_clock_skew:
            raise Refusal(403, "clock_skew", "the request's date is too far from EESZT's clock")
        if not cert.not_valid_before_utc <= now < cert.not_valid_after_utc:
            raise Refusal(403, "certificate_not_valid", "the client certificate is not valid now")
        fingerprint = cert.fingerprint(hashes.SHA256()).hex()
        if require_active and fingerprint not in inst.active:
            raise Refusal(403, "certificate_not_activated",
                          "the client certificate is not activated: activate it with the code sent by SMS")
        return cert, inst_id

    def _authenticate(self, request: Request, body: bytes) -> str:
        return self._certificate(request, body, require_active=True)[1]
