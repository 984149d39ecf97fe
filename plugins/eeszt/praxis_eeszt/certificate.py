"""The institution's client certificate: reading the uploaded file, checking it, signing requests with it.

EESZT authenticates the institution's system by its WAF-SSL client certificate (mutual TLS). The fake EESZT
models the TLS handshake at the HTTP layer: each request carries the certificate (``X-EESZT-Certificate``,
base64 DER) and a signature made with its private key over the method, path, date and body digest
(``X-EESZT-Signature``), so the fake can check possession of the key, the validity dates and that the
certificate was activated for the institution, as the TLS server would.

The same private key also derives the key that encrypts doctors' EESZT session tokens in the plugin's table
(HKDF-SHA256): the certificate itself is stored encrypted by the core, and replacing it simply ends the stored
sessions (doctors log in again).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import pkcs12

PEM_KEY = re.compile(rb"-----BEGIN ([A-Z ]+ )?PRIVATE KEY-----.+?-----END ([A-Z ]+ )?PRIVATE KEY-----", re.DOTALL)
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


class CertificateError(ValueError):
    """Why a certificate file cannot be used; ``code`` is stable for API clients."""

    def __init__(self, message: str, code: str = "invalid_certificate") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class ClientCertificate:
    certificate: x509.Certificate
    key: PrivateKey

    # --- reading ---------------------------------------------------------------------------------

    @classmethod
    def load(cls, data: bytes, password: str | None = None) -> ClientCertificate:
        """Read a PEM bundle (certificate + private key, in any order) or a PKCS#12 (.p12/.pfx) file."""
        secret = password.encode() if password else None
        if b"-----BEGIN" in data:
            return cls._from_pem(data, secret)
        try:
            key, certificate, _ = pkcs12.load_key_and_certificates(data, secret)
        except ValueError as exc:
            raise CertificateError("not a PEM file, or a PKCS#12 file whose password is wrong: "
                                   f"{exc}", "unreadable_certificate") from None
        if certificate is None or key is None:
            raise CertificateError("the PKCS#12 file must hold the certificate and its private key", "incomplete")
        return cls._checked(certificate, key)

    @classmethod
    def _from_pem(cls, data: bytes, secret: bytes | None) -> ClientCertificate:
        try:
            certificates = x509.load_pem_x509_certificates(data)
        except ValueError:
            raise CertificateError("the PEM file holds no certificate", "incomplete") from None
        block = PEM_KEY.search(data)
        if block is None:
            raise CertificateError("the PEM file holds no private key: export the certificate with its key",
                                   "incomplete")
        try:
            key = serialization.load_pem_private_key(block.group(0), secret)
        except TypeError:
            raise CertificateError("the private key is encrypted: give its password", "password_required") from None
        except ValueError:
            raise CertificateError("the private key cannot be read (wrong password?)", "unreadable_key") from None
        matching = [c for c in certificates if _same_key(c.public_key(), key)]
        return cls._checked(matching[0] if matching else certificates[0], key)

    @classmethod
    def _checked(cls, certificate: x509.Certificate, key: object) -> ClientCertificate:
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise CertificateError("only RSA and EC keys are supported", "unsupported_key")
        if not _same_key(certificate.public_key(), key):
            raise CertificateError("the private key does not belong to the certificate", "key_mismatch")
        return cls(certificate, key)

    # --- facts -------------------------------------------------------------------------------------

    @property
    def fingerprint(self) -> str:
        return self.certificate.fingerprint(hashes.SHA256()).hex()

    @property
    def subject(self) -> str:
        return self.certificate.subject.rfc4514_string()

    @property
    def not_before(self) -> datetime:
        return self.certificate.not_valid_before_utc

    @property
    def not_after(self) -> datetime:
        return self.certificate.not_valid_after_utc

    def problem_at(self, at: datetime) -> str | None:
        """Why the certificate cannot be used at ``at``, or None."""
        if at < self.not_before:
            return f"the certificate is valid only from {self.not_before.isoformat()}"
        if at >= self.not_after:
            return f"the certificate expired on {self.not_after.isoformat()}"
        return None

    def summary(self, at: datetime) -> dict[str, object]:
        return {"subject": self.subject, "fingerprint": self.fingerprint, "not_before": self.not_before.isoformat(),
                "not_after": self.not_after.isoformat(), "problem": self.problem_at(at)}

    # --- use ---------------------------------------------------------------------------------------

    def pem_bundle(self) -> str:
        """The certificate and its (unencrypted, PKCS#8) key as one PEM text, as stored in the settings."""
        cert = self.certificate.public_bytes(serialization.Encoding.PEM)
        key = self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())
        return (cert + key).decode()

    def der_b64(self) -> str:
        return base64.b64encode(self.certificate.public_bytes(serialization.Encoding.DER)).decode()

    def sign(self, message: bytes) -> str:
        if isinstance(self.key, rsa.RSAPrivateKey):
            signature = self.key.sign(message, padding.PKCS1v15(), hashes.SHA256())
        else:
            signature = self.key.sign(message, ec.ECDSA(hashes.SHA256()))
        return base64.b64encode(signature).decode()

    def sealing_key(self) -> bytes:
        material = self.key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption())
        return HKDF(hashes.SHA256(), 32, salt=None, info=b"praxis-eeszt/session-token/v1").derive(material)

    def seal(self, plaintext: str, context: str) -> str:
        nonce = os.urandom(12)
        sealed = AESGCM(self.sealing_key()).encrypt(nonce, plaintext.encode(), context.encode())
        return base64.b64encode(nonce + sealed).decode()

    def unseal(self, token: str, context: str) -> str | None:
        """The plaintext, or None if it was sealed under another certificate or tampered with."""
        raw = base64.b64decode(token)
        try:
            return AESGCM(self.sealing_key()).decrypt(raw[:12], raw[12:], context.encode()).decode()
        except InvalidTag:
            return None


def signing_string(method: str, path: str, date: str, body: bytes) -> bytes:
    """What ``X-EESZT-Signature`` signs: method, path (with query), date and the body's SHA-256, one per line."""
    return f"{method.upper()}\n{path}\n{date}\n{hashlib.sha256(body).hexdigest()}".encode()


def verify(certificate: x509.Certificate, message: bytes, signature_b64: str) -> bool:
    """Check a request signature with the certificate's public key (used by the fake EESZT)."""
    public = certificate.public_key()
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        if isinstance(public, rsa.RSAPublicKey):
            public.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        else:
            return False
    except (InvalidSignature, ValueError):
        return False
    return True


def _same_key(public: object, key: object) -> bool:
    def raw(k: object) -> bytes:
        return k.public_bytes(serialization.Encoding.DER,  # type: ignore[attr-defined]
                              serialization.PublicFormat.SubjectPublicKeyInfo)

    try:
        return raw(public) == raw(key.public_key())  # type: ignore[attr-defined]
    except AttributeError:
        return False
