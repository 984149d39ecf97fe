"""CMS detached signatures (RFC 5652) with an embedded RFC 3161 signature time-stamp (CAdES-T).

Signing uses ``cryptography``'s ``PKCS7SignatureBuilder`` (SHA-256, detached, binary: the bytes are signed as
they are, not CRLF-converted). The time-stamp token over ``SignerInfo.signature`` is then added as the unsigned
attribute ``id-aa-signatureTimeStampToken`` (1.2.840.113549.1.9.16.2.14); unsigned attributes are outside the
signature, so adding it keeps the signature valid. The stored signature is that one DER blob.

Verification: ``cryptography`` has no CMS verify API, so pyHanko's ``async_validate_detached_cms`` checks the
signature and the token, with our own readable checks around it. pyHanko reports a one-byte change of the
content as ``intact=False`` while ``valid`` stays True, so ``intact`` (digest) and ``valid`` (signature) are
reported as separate checks and both must pass.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from asn1crypto import cms
from asn1crypto import x509 as ax509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from praxis_signing_certificate import tsa


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    message: str


def sign(data: bytes, certificate: x509.Certificate, key: Any, chain: list[x509.Certificate]) -> bytes:
    builder = pkcs7.PKCS7SignatureBuilder().set_data(data).add_signer(certificate, key, hashes.SHA256())
    for extra in chain:
        builder = builder.add_certificate(extra)
    return builder.sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature,
                                                     pkcs7.PKCS7Options.Binary])


def signature_value(signature: bytes) -> bytes:
    info = cms.ContentInfo.load(signature)
    return bytes(info["content"]["signer_infos"][0]["signature"].native)


def embed_timestamp(signature: bytes, token: cms.ContentInfo) -> bytes:
    info = cms.ContentInfo.load(signature)
    signed = info["content"]
    signer = signed["signer_infos"][0]
    signer["unsigned_attrs"] = cms.CMSAttributes([{"type": "signature_time_stamp_token", "values": [token]}])
    # Re-assign each level so its cached encoding is rebuilt (``dump(force=True)`` re-encodes the whole tree
    # once per nesting level and takes minutes on a real certificate chain).
    signed["signer_infos"] = cms.SignerInfos([signer])
    info["content"] = signed
    return info.dump()


def display_name(name: Any) -> str:
    """The common name of an X.509 name (asn1crypto), else its readable form."""
    native = name.native
    common = native.get("common_name") if isinstance(native, dict) else None
    if isinstance(common, list):
        common = common[0] if common else None
    return str(common) if common else name.human_friendly


def run_sync(coro: Any) -> Any:
    """Run a coroutine to the end from synchronous code, also when the calling thread has an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def load_roots(pem: str) -> list[ax509.Certificate]:
    """The certificates of a PEM bundle (``ValueError`` naming the one that cannot be read)."""
    roots = []
    for number, block in enumerate(_pem_blocks(pem), start=1):
        try:
            roots.append(ax509.Certificate.load(x509.load_pem_x509_certificate(block.encode()).public_bytes(
                serialization.Encoding.DER)))
        except ValueError as exc:
            raise ValueError(f"certificate {number} of the PEM bundle cannot be read: {exc}") from exc
    return roots


def _pem_blocks(pem: str) -> list[str]:
    blocks, current = [], []
    for line in pem.strip().splitlines():
        line = line.strip()
        if line.startswith("-----BEGIN CERTIFICATE"):
            current = [line]
        elif line.startswith("-----END CERTIFICATE") and current:
            current.append(line)
            blocks.append("\n".join(current))
            current = []
        elif current:
            current.append(line)
    return blocks


@dataclass(frozen=True)
class Parsed:
    signed_data: cms.SignedData
    signer: cms.SignerInfo
    certificate: ax509.Certificate | None
    token: cms.ContentInfo | None


def parse(signature: bytes) -> Parsed:
    """Structure only; raises ``ValueError`` with the reason."""
    if not signature:
        raise ValueError("the signature is empty")
    try:
        info = cms.ContentInfo.load(signature, strict=True)
        if info["content_type"].native != "signed_data":
            raise ValueError(f"a CMS {info['content_type'].native}, not SignedData")
        signed = info["content"]
        signers = signed["signer_infos"]
        if len(signers) != 1:
            raise ValueError(f"{len(signers)} signers; exactly one expected")
        signer = signers[0]
        if signed["encap_content_info"]["content"].native is not None:
            raise ValueError("the content is embedded; a detached signature was expected")
        sid = signer["sid"].chosen
        cert = None
        for choice in signed["certificates"] or []:
            candidate = choice.chosen
            if isinstance(candidate, ax509.Certificate) and candidate.issuer == sid["issuer"] \
                    and candidate.serial_number == sid["serial_number"].native:
                cert = candidate
        token = None
        for attr in signer["unsigned_attrs"] or []:
            if attr["type"].native == "signature_time_stamp_token":
                token = attr["values"][0]
        signed.native  # noqa: B018  (decodes everything: damage anywhere fails here)
        return Parsed(signed, signer, cert, token)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise ValueError(f"not a readable CMS detached signature ({exc})") from exc


def verify(document: bytes, signature: bytes, roots: list[ax509.Certificate],
           tsa_roots: list[ax509.Certificate], *, require_timestamp: bool = True, now: datetime) -> list[Check]:
    """Every check, in order, each with a readable message."""
    from pyhanko.sign.validation.generic_cms import async_validate_detached_cms
    from pyhanko_certvalidator import ValidationContext

    checks: list[Check] = []
    try:
        parsed = parse(signature)
    except ValueError as exc:
        return [Check("format", False, str(exc))]
    checks.append(Check("format", True, "CMS SignedData, detached, one signer"))
    cert = parsed.certificate
    if cert is None:
        return [*checks, Check("certificate", False, "the signer's certificate is not in the signature")]
    subject = display_name(cert.subject)

    digest = hashlib.sha256(document).digest()
    signed_digest = None
    for attr in parsed.signer["signed_attrs"] or []:
        if attr["type"].native == "message_digest":
            signed_digest = attr["values"][0].native
    algorithm = parsed.signer["digest_algorithm"]["algorithm"].native
    if algorithm != "sha256":
        checks.append(Check("digest", False, f"digest algorithm {algorithm}; SHA-256 expected"))
    elif signed_digest == digest:
        checks.append(Check("digest", True,
                            f"the document's SHA-256 matches the signed digest ({digest.hex()[:16]}...)"))
    else:
        checks.append(Check("digest", False, "the document was changed after it was signed: its SHA-256 is "
                                             f"{digest.hex()[:16]}..., the signature covers "
                                             f"{(signed_digest or b'').hex()[:16]}..."))

    # The time-stamp first: the certificate is judged at the time it proves.
    gen_time: datetime | None = None
    token_checks: list[Check] = []
    if parsed.token is None:
        token_checks.append(Check("time-stamp", not require_timestamp,
                                  "no time-stamp token" + (" (required)" if require_timestamp else "")))
    else:
        try:
            info = tsa.token_info(parsed.token)
            gen_time = info["gen_time"].native
            imprint = info["message_imprint"]
            expected = hashlib.new(imprint["hash_algorithm"]["algorithm"].native,
                                   bytes(parsed.signer["signature"].native)).digest()
            if imprint["hashed_message"].native != expected:
                token_checks.append(Check("time-stamp", False, "the time-stamp covers another signature value"))
                gen_time = None
            else:
                token_cert = tsa.tsa_certificate(parsed.token)
                if token_cert is None or not tsa.has_time_stamping_eku(token_cert):
                    token_checks.append(Check("time-stamp", False, "the TSA certificate is missing or lacks the "
                                                                   "critical time-stamping key usage"))
                    gen_time = None
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            token_checks.append(Check("time-stamp", False, f"the time-stamp token cannot be read ({exc})"))
    moment = gen_time or now
    try:
        status = run_sync(async_validate_detached_cms(
            document, parsed.signed_data,
            signer_validation_context=ValidationContext(trust_roots=roots, moment=moment, allow_fetching=False),
            ts_validation_context=ValidationContext(trust_roots=tsa_roots, allow_fetching=False),
        ))
    except Exception as exc:  # pyHanko raises on structures it cannot process: that is a failed check
        return [*checks, Check("signature", False, f"the signature cannot be validated: {type(exc).__name__}: {exc}")]

    if status.valid:
        checks.append(Check("signature", True, "the signature over the signed attributes is valid "
                                               f"({status.pkcs7_signature_mechanism})"))
    else:
        checks.append(Check("signature", False, "the signature value does not match (damaged or forged)"))

    if parsed.token is not None and not token_checks:
        ts = status.timestamp_validity
        if ts is None:
            token_checks.append(Check("time-stamp", False, "pyHanko found no usable time-stamp token"))
            gen_time = None
        elif not (ts.intact and ts.valid):
            token_checks.append(Check("time-stamp", False, "the time-stamp token's own signature is invalid "
                                                           "(damaged or forged)"))
            gen_time = None
        elif not ts.trusted:
            token_checks.append(Check("time-stamp", False, "the time-stamp authority is not trusted "
                                                           f"({display_name(ts.signing_cert.subject)}): add its CA to "
                                                           "the trusted time-stamp roots"))
            gen_time = None
        else:
            token_checks.append(Check("time-stamp", True, f"time-stamped {ts.timestamp:%Y-%m-%d %H:%M:%S} UTC by "
                                                          f"{display_name(ts.signing_cert.subject)}"))
    checks += token_checks

    not_before, not_after = cert["tbs_certificate"]["validity"]["not_before"].native, \
        cert["tbs_certificate"]["validity"]["not_after"].native
    at_word = "time-stamped" if gen_time is not None else "checked"
    if not_before <= moment <= not_after:
        checks.append(Check("certificate validity", True,
                            f"{subject}: valid {not_before:%Y-%m-%d} to {not_after:%Y-%m-%d}, {at_word} at "
                            f"{moment:%Y-%m-%d %H:%M}"))
    else:
        why = "had expired" if moment > not_after else "was not yet valid"
        checks.append(Check("certificate validity", False, f"{subject}: the certificate {why} at the {at_word} time "
                                                           f"{moment:%Y-%m-%d %H:%M} (valid {not_before:%Y-%m-%d} to "
                                                           f"{not_after:%Y-%m-%d})"))
    if status.trusted:
        issuer = display_name(status.validation_path.first.subject) if status.validation_path else "a trusted root"
        checks.append(Check("certificate chain", True, f"issued under the trusted root {issuer}"))
    else:
        problem = status.trust_problem_indic
        checks.append(Check("certificate chain", False, f"{subject} does not chain to a configured trusted root "
                                                        f"({getattr(problem, 'name', problem) or 'untrusted'})"))
    return checks
