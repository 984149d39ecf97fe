"""The vendor's signatures: CMS SignedData, detached, over the SHA-256 the plugin sends (the document never
leaves the clinic), signed with the doctor's certificate that the vendor's CA issued after the real-name check.

Verification is local (the vendor need not be up): the structure, the message digest against the document,
the signature value and the certificate chain with pyHanko (cryptography has no CMS verify API), and the
certificate's validity at the signing time the vendor put in the signed attributes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from asn1crypto import algos, cms
from asn1crypto import x509 as ax509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    message: str


def run_sync(coro: Any) -> Any:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def load_roots(pem: str) -> list[ax509.Certificate]:
    roots = []
    for number, block in enumerate(pem.split("-----END CERTIFICATE-----"), start=1):
        if "-----BEGIN CERTIFICATE-----" not in block:
            continue
        text = block[block.index("-----BEGIN CERTIFICATE-----"):] + "-----END CERTIFICATE-----"
        try:
            cert = x509.load_pem_x509_certificate(text.encode())
        except ValueError as exc:
            raise ValueError(f"certificate {number} of the PEM bundle cannot be read: {exc}") from exc
        roots.append(ax509.Certificate.load(cert.public_bytes(serialization.Encoding.DER)))
    return roots


def common_name(name: Any) -> str:
    native = name.native
    value = native.get("common_name") if isinstance(native, dict) else None
    return str(value) if value else name.human_friendly


def sign_digest(digest: bytes, certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey,
                chain: list[x509.Certificate], at: datetime) -> bytes:
    """A detached CMS signature over a document known only by its SHA-256 (what the vendor does)."""
    cert = ax509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))
    attributes = cms.CMSAttributes([
        {"type": "content_type", "values": ["data"]},
        {"type": "signing_time", "values": [cms.Time({"utc_time": at})]},
        {"type": "message_digest", "values": [digest]},
    ])
    signer = cms.SignerInfo({
        "version": "v1",
        "sid": {"issuer_and_serial_number": {"issuer": cert.issuer, "serial_number": cert.serial_number}},
        "digest_algorithm": {"algorithm": "sha256"},
        "signed_attrs": attributes,
        "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"}),
        "signature": key.sign(attributes.dump(), ec.ECDSA(hashes.SHA256())),
    })
    signed = cms.SignedData({
        "version": "v1",
        "digest_algorithms": [{"algorithm": "sha256"}],
        "encap_content_info": {"content_type": "data"},
        "certificates": [cert, *[ax509.Certificate.load(c.public_bytes(serialization.Encoding.DER)) for c in chain]],
        "signer_infos": [signer],
    })
    return cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump()


def _parse(signature: bytes) -> tuple[cms.SignedData, cms.SignerInfo, ax509.Certificate | None]:
    if not signature:
        raise ValueError("the signature is empty")
    try:
        info = cms.ContentInfo.load(signature, strict=True)
        if info["content_type"].native != "signed_data":
            raise ValueError(f"a CMS {info['content_type'].native}, not SignedData")
        signed = info["content"]
        if len(signed["signer_infos"]) != 1:
            raise ValueError("exactly one signer expected")
        if signed["encap_content_info"]["content"].native is not None:
            raise ValueError("the content is embedded; a detached signature was expected")
        signer = signed["signer_infos"][0]
        sid = signer["sid"].chosen
        cert = next((c.chosen for c in signed["certificates"] or []
                     if isinstance(c.chosen, ax509.Certificate) and c.chosen.issuer == sid["issuer"]
                     and c.chosen.serial_number == sid["serial_number"].native), None)
        signed.native  # noqa: B018  (decodes everything: damage anywhere fails here)
        return signed, signer, cert
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise ValueError(f"not a readable CMS detached signature ({exc})") from exc


def verify(document: bytes, signature: bytes, roots: list[ax509.Certificate]) -> list[Check]:
    from pyhanko.sign.validation.generic_cms import async_validate_detached_cms
    from pyhanko_certvalidator import ValidationContext

    try:
        signed, signer, cert = _parse(signature)
    except ValueError as exc:
        return [Check("format", False, str(exc))]
    checks = [Check("format", True, "CMS SignedData, detached, one signer")]
    if cert is None:
        return [*checks, Check("certificate", False, "the signer's certificate is not in the signature")]
    subject = common_name(cert.subject)
    attrs = {a["type"].native: a["values"][0].native for a in signer["signed_attrs"] or []}
    digest = hashlib.sha256(document).digest()
    if attrs.get("message_digest") == digest:
        checks.append(Check("digest", True,
                            f"the document's SHA-256 matches the signed digest ({digest.hex()[:16]}...)"))
    else:
        checks.append(Check("digest", False, "the document was changed after it was signed: its SHA-256 is "
                                             f"{digest.hex()[:16]}..., the signature covers "
                                             f"{(attrs.get('message_digest') or b'').hex()[:16]}..."))
    signed_at: datetime | None = attrs.get("signing_time")
    moment = signed_at
    try:
        status = run_sync(async_validate_detached_cms(
            document, signed,
            signer_validation_context=ValidationContext(trust_roots=roots, moment=moment, allow_fetching=False)))
    except Exception as exc:
        return [*checks, Check("signature", False, f"the signature cannot be validated: {type(exc).__name__}: {exc}")]
    checks.append(Check("signature", bool(status.valid), "the signature value is valid" if status.valid
                        else "the signature value does not match (damaged or forged)"))
    validity = cert["tbs_certificate"]["validity"]
    start, end = validity["not_before"].native, validity["not_after"].native
    if signed_at is None:
        checks.append(Check("certificate validity", False, "the signature carries no signing time"))
    elif start <= signed_at <= end:
        checks.append(Check("certificate validity", True,
                            f"{subject}: valid {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M}, signed "
                            f"{signed_at:%Y-%m-%d %H:%M} UTC"))
    else:
        checks.append(Check("certificate validity", False, f"{subject}: the certificate was not valid at the signing "
                                                           f"time {signed_at:%Y-%m-%d %H:%M} UTC"))
    if status.trusted:
        checks.append(Check("certificate chain", True, f"issued by the vendor's CA "
                                                       f"{common_name(status.validation_path.first.subject)}"))
    else:
        checks.append(Check("certificate chain", False, f"{subject} does not chain to the configured vendor root"))
    return checks
