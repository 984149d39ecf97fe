"""Per-clinic settings: the time-stamp authority, the trusted roots and the secret that encrypts doctors' keys."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, field_validator

from praxis_signing_certificate.cms import load_roots


class Settings(BaseModel):
    tsa_url: str = Field("", max_length=500, description="The RFC 3161 time-stamp authority (HTTP POST of "
                                                         "application/timestamp-query), e.g. the KICA TSA.")
    tsa_timeout_seconds: float = Field(5.0, ge=0.2, le=60, description="How long to wait for the TSA.")
    tsa_policy: str | None = Field(None, max_length=100, pattern=r"^[0-2](\.\d+)+$",
                                   description="The TSA policy OID to ask for, if the TSA needs one.")
    trusted_roots_pem: str = Field("", max_length=200_000, description="PEM certificates of the CAs that issue "
                                                                       "doctors' certificates (e.g. the KICA root).")
    tsa_roots_pem: str = Field("", max_length=200_000, description="PEM certificates of the CAs trusted for "
                                                                   "time-stamps; empty: the trusted roots above.")
    key_encryption_secret: SecretStr | None = Field(
        None, description="Encrypts the doctors' private keys (AES-256-GCM, key from HKDF-SHA256). At least 32 "
                          "characters. Changing it makes stored keys unusable: doctors upload their certificates "
                          "again.")

    @field_validator("tsa_url")
    @classmethod
    def _url(cls, value: str) -> str:
        value = value.strip()
        if value:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError("must be an http:// or https:// address")
        return value

    @field_validator("trusted_roots_pem", "tsa_roots_pem")
    @classmethod
    def _pem(cls, value: str) -> str:
        if value.strip():
            if not load_roots(value):
                raise ValueError("no '-----BEGIN CERTIFICATE-----' block found")
        return value

    @field_validator("key_encryption_secret")
    @classmethod
    def _secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value() and len(value.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters")
        return value
