"""A fake RFC 3161 time-stamp authority on loopback, for tests: real, signed ``TimeStampResp`` answers.

It answers ``POST /`` with ``Content-Type: application/timestamp-query`` like a real TSA: it parses the
``TimeStampReq`` (asn1crypto), builds a ``TSTInfo`` echoing the imprint and nonce, and signs it as CMS SignedData
with its own time-stamping certificate (ECDSA P-256 with ``cryptography``), with the ESS signing-certificate-v2
attribute and the certificate included when asked (``certReq``). Unsupported hash algorithms and wrong content
types are refused the way RFC 3161 says (status ``rejection`` with a PKIFailureInfo). ``FakeServer`` adds the
faults (``stop()`` for a TSA that is down, ``fail_next``, ``hang_next``); ``reject_next`` makes it refuse.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as ax509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI, Request, Response

from plugin_sdk.testing.fake_server import FakeServer
from praxis_signing_certificate.testing import Issued
from praxis_signing_certificate.tsa import QUERY_TYPE, REPLY_TYPE, TimeStampResp

POLICY = "1.3.6.1.4.1.55555.1.1"
HASHES = {"sha256": 32, "sha384": 48, "sha512": 64}


def _failure(reason: str, text: str) -> bytes:
    return TimeStampResp({"status": {"status": "rejection", "status_string": [text],
                                     "fail_info": tsp.PKIFailureInfo({reason})}}).dump()


def build_token(issued: Issued, imprint: tsp.MessageImprint, nonce: int | None, serial: int, at: datetime,
                include_certificate: bool = True) -> cms.ContentInfo:
    cert = ax509.Certificate.load(issued.certificate.public_bytes(serialization.Encoding.DER))
    info: dict[str, object] = {"version": "v1", "policy": POLICY, "message_imprint": imprint,
                               "serial_number": serial, "gen_time": at, "accuracy": {"seconds": 1},
                               "tsa": ax509.GeneralName({"directory_name": cert.subject})}
    if nonce is not None:
        info["nonce"] = nonce
    content = tsp.TSTInfo(info).dump()
    signing_certificate = {"certs": [{
        "cert_hash": hashlib.sha256(cert.dump()).digest(),
        "issuer_serial": {"issuer": [ax509.GeneralName({"directory_name": cert.issuer})],
                          "serial_number": cert.serial_number},
    }]}
    attributes = cms.CMSAttributes([
        {"type": "content_type", "values": ["tst_info"]},
        {"type": "signing_time", "values": [cms.Time({"utc_time": at})]},
        {"type": "message_digest", "values": [hashlib.sha256(content).digest()]},
        {"type": "signing_certificate_v2", "values": [signing_certificate]},
    ])
    key = issued.key
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    signature = key.sign(attributes.dump(), ec.ECDSA(hashes.SHA256()))  # DER of the SET OF (RFC 5652 §5.4)
    signer = cms.SignerInfo({
        "version": "v1",
        "sid": {"issuer_and_serial_number": {"issuer": cert.issuer, "serial_number": cert.serial_number}},
        "digest_algorithm": {"algorithm": "sha256"},
        "signed_attrs": attributes,
        "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"}),
        "signature": signature,
    })
    signed = cms.SignedData({
        "version": "v3",
        "digest_algorithms": [{"algorithm": "sha256"}],
        "encap_content_info": {"content_type": "tst_info", "content": core.ParsableOctetString(content)},
        "certificates": [cert] if include_certificate else [],
        "signer_infos": [signer],
    })
    return cms.ContentInfo({"content_type": "signed_data", "content": signed})


class FakeTSA(FakeServer):
    """``FakeTSA(pki.tsa())``; ``.url`` is the address for the ``tsa_url`` setting."""

    def __init__(self, issued: Issued, *, clock: Callable[[], datetime] | None = None) -> None:
        self.issued = issued
        self.clock = clock or (lambda: datetime.now(UTC))
        self._serials = itertools.count(1000)
        self._reject: list[tuple[str, str]] = []
        self._reject_lock = threading.Lock()
        super().__init__()

    @property
    def url(self) -> str:
        return f"{self.base_url}/"

    def reset(self) -> None:
        super().reset()
        with self._reject_lock:
            self._reject.clear()

    def reject_next(self, reason: str = "system_failure", text: str = "try later") -> None:
        """The next request is answered with status ``rejection`` and this PKIFailureInfo."""
        with self._reject_lock:
            self._reject.append((reason, text))

    def build_app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/")
        async def timestamp(request: Request) -> Response:
            if request.headers.get("content-type", "").split(";")[0].strip() != QUERY_TYPE:
                return Response(_failure("bad_data_format", f"Content-Type must be {QUERY_TYPE}"),
                                media_type=REPLY_TYPE)
            with self._reject_lock:
                rejected = self._reject.pop(0) if self._reject else None
            if rejected is not None:
                return Response(_failure(*rejected), media_type=REPLY_TYPE)
            try:
                req = tsp.TimeStampReq.load(await request.body())
                imprint = req["message_imprint"]
                algorithm = imprint["hash_algorithm"]["algorithm"].native
                hashed = imprint["hashed_message"].native
                nonce = req["nonce"].native
                want_cert = bool(req["cert_req"].native)
            except (ValueError, TypeError, KeyError):
                return Response(_failure("bad_request", "not a TimeStampReq"), media_type=REPLY_TYPE)
            if algorithm not in HASHES or len(hashed) != HASHES[algorithm]:
                return Response(_failure("bad_alg", f"unsupported hash algorithm {algorithm}"), media_type=REPLY_TYPE)
            at = self.clock().astimezone(UTC).replace(microsecond=0)
            serial = next(self._serials)
            token = build_token(self.issued, imprint, nonce, serial, at, include_certificate=want_cert)
            self.record_effect({"serial": serial, "gen_time": at, "imprint": hashed.hex()})
            body = tsp.TimeStampResp({"status": {"status": "granted"}, "time_stamp_token": token}).dump()
            return Response(body, media_type=REPLY_TYPE)

        return app
