"""Doctors' private keys at rest, and reading the PKCS#12 files they upload.

Plugins cannot use the core's keyring, so the keys are encrypted with a key derived from the plugin's own secret
setting ``key_encryption_secret`` (stored encrypted by the core like every ``SecretStr`` setting):

* per row a random 16-byte salt; ``HKDF-SHA256(secret, salt, info="praxis signing_certificate key v1")`` gives a
  256-bit key; AES-256-GCM with a random 12-byte nonce encrypts the PKCS#8 DER private key;
* the AAD is ``signing_certificate_key:<clinic>:<user>:<certificate SHA-256>``, so a ciphertext copied onto another
  doctor's or clinic's row does not decrypt.

The PKCS#12 password is used once, to open the file, and is never stored or logged. Changing the secret setting
makes the stored keys unreadable: doctors then upload their certificates again (signing says so).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import pkcs12

from plugin_sdk.errors import FieldError, PermanentError, ValidationFailed

INFO = b"praxis signing_certificate key v1"
MAX_PKCS12_BYTES = 64 * 1024


def _aead(secret: str, salt: bytes) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=INFO).derive(secret.encode())
    return AESGCM(key)


def aad(clinic_id: int, user_id: int, certificate_sha256: str) -> bytes:
    return f"signing_certificate_key:{clinic_id}:{user_id}:{certificate_sha256}".encode()


def encrypt(secret: str, private_key_der: bytes, associated: bytes) -> tuple[bytes, bytes, bytes]:
    salt, nonce = os.urandom(16), os.urandom(12)
    return salt, nonce, _aead(secret, salt).encrypt(nonce, private_key_der, associated)


def decrypt(secret: str, salt: bytes, nonce: bytes, ciphertext: bytes, associated: bytes) -> Any:
    try:
        der = _aead(secret, salt).decrypt(nonce, ciphertext, associated)
    except InvalidTag as exc:
        raise PermanentError("the stored private key cannot be decrypted: the plugin's key encryption secret was "
                             "changed (or the row was tampered with); upload the certificate again",
                             code="key_unreadable") from exc
    return serialization.load_der_private_key(der, password=None)


def fingerprint(certificate: x509.Certificate) -> str:
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


@dataclass(frozen=True)
class Upload:
    certificate: x509.Certificate
    key: Any
    chain: list[x509.Certificate]

    @property
    def key_der(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())


def read_pkcs12(data: Any, password: Any) -> Upload:
    """Open an uploaded PKCS#12 (base64 in ``pkcs12``); ``ValidationFailed`` naming the field otherwise."""
    if not isinstance(data, str) or not data.strip():
        raise ValidationFailed([FieldError("pkcs12", "the PKCS#12 file (.p12/.pfx), base64-encoded, is required",
                                           "required")])
    if not isinstance(password, str):
        raise ValidationFailed([FieldError("password", "the certificate's password is required", "required")])
    try:
        raw = base64.b64decode(data.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValidationFailed([FieldError("pkcs12", "not valid base64", "invalid_base64")]) from exc
    if len(raw) > MAX_PKCS12_BYTES:
        raise ValidationFailed([FieldError("pkcs12", f"larger than {MAX_PKCS12_BYTES // 1024} KiB", "too_large")])
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(raw, password.encode() or None)
    except ValueError as exc:
        raise ValidationFailed([FieldError("password", "the password is wrong, or the file is not a PKCS#12 "
                                                       "certificate", "wrong_password")]) from exc
    if key is None or cert is None:
        raise ValidationFailed([FieldError("pkcs12", "the file must hold the certificate and its private key",
                                           "incomplete")])
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ValidationFailed([FieldError("pkcs12", f"{type(key).__name__.lstrip('_')} keys are not supported; "
                                                     "RSA or ECDSA are", "unsupported_key")])
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(serialization.Encoding.DER, public) != \
            cert.public_key().public_bytes(serialization.Encoding.DER, public):
        raise ValidationFailed([FieldError("pkcs12", "the private key does not belong to the certificate",
                                           "key_mismatch")])
    return Upload(cert, key, list(extra or []))


def validity_problem(certificate: x509.Certificate, at: datetime) -> tuple[str, str] | None:
    """(code, message) if the certificate is not valid at ``at``."""
    start, end = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    if at < start:
        return "certificate_not_yet_valid", f"the certificate is not valid before {start:%Y-%m-%d %H:%M} UTC"
    if at > end:
        return "certificate_expired", f"the certificate expired on {end:%Y-%m-%d %H:%M} UTC"
    return None


def subject_name(certificate: x509.Certificate) -> str:
    names = certificate.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)
    return str(names[0].value) if names else certificate.subject.rfc4514_string()
