"""A throw-away PKI for tests and demos: a root CA, doctors' certificates (valid, expired, not yet valid) as
PKCS#12 files, and a time-stamping certificate for the fake TSA. Everything is generated with ``cryptography``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def _name(common_name: str, organisation: str = "Praxis Test PKI", country: str = "KR") -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, country),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


@dataclass
class Issued:
    certificate: x509.Certificate
    key: PrivateKey
    chain: list[x509.Certificate] = field(default_factory=list)

    def pkcs12(self, password: str, name: str = "doctor") -> bytes:
        return pkcs12.serialize_key_and_certificates(
            name.encode(), self.key, self.certificate, self.chain or None,
            serialization.BestAvailableEncryption(password.encode()),
        )

    def pkcs12_b64(self, password: str) -> str:
        return base64.b64encode(self.pkcs12(password)).decode()

    @property
    def pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()


class TestPKI:
    """A root CA that issues doctors' and time-stamping certificates."""

    __test__ = False

    def __init__(self, name: str = "Praxis Test Root CA", now: datetime | None = None) -> None:
        self.now = now or datetime.now(UTC)
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = _name(name)
        self.certificate = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(self.now - timedelta(days=3650)).not_valid_after(self.now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )

    @property
    def pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()

    def issue(self, common_name: str, *, not_before: datetime | None = None, not_after: datetime | None = None,
              rsa_key: bool = True, time_stamping: bool = False) -> Issued:
        """A certificate for ``common_name``; a doctor's signing certificate unless ``time_stamping``."""
        key: PrivateKey = rsa.generate_private_key(65537, 2048) if rsa_key else ec.generate_private_key(ec.SECP256R1())
        start = not_before or self.now - timedelta(days=1)
        end = not_after or self.now + timedelta(days=365)
        builder = (
            x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(self.certificate.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=not time_stamping,
                                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                                         key_cert_sign=False, crl_sign=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
        )
        if time_stamping:  # RFC 3161 §2.3: the TSA certificate has exactly this EKU, marked critical
            builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        return Issued(builder.sign(self.key, hashes.SHA256()), key, [self.certificate])

    def doctor(self, name: str = "Dr. Kim Minji", **kwargs: object) -> Issued:
        return self.issue(name, **kwargs)  # type: ignore[arg-type]

    def expired(self, name: str = "Dr. Expired") -> Issued:
        return self.issue(name, not_before=self.now - timedelta(days=400), not_after=self.now - timedelta(days=35))

    def not_yet_valid(self, name: str = "Dr. Future") -> Issued:
        return self.issue(name, not_before=self.now + timedelta(days=10), not_after=self.now + timedelta(days=400))

    def tsa(self, name: str = "Praxis Test TSA") -> Issued:
        return self.issue(name, rsa_key=False, time_stamping=True,
                          not_before=self.now - timedelta(days=30), not_after=self.now + timedelta(days=3650))
