"""Per-clinic settings of the cloud e-signature vendor."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, field_validator

from praxis_signing_cloud.cms import load_roots


class Settings(BaseModel):
    base_url: str = Field("https://smlopenapi.esign.cn", max_length=300,
                          description="The vendor's Open API (production https://openapi.esign.cn, sandbox "
                                      "https://smlopenapi.esign.cn).")
    app_id: str = Field("", max_length=100, description="X-Tsign-Open-App-Id.")
    app_secret: SecretStr | None = Field(None, description="Signs requests and authenticates callbacks (HMAC-SHA256).")
    timeout_seconds: float = Field(5.0, ge=0.2, le=60, description="How long to wait for the vendor.")
    vendor_roots_pem: str = Field("", max_length=200_000,
                                  description="PEM certificates of the vendor's CA: signatures chain to these.")
    notify_url: str | None = Field(None, max_length=500, description="Where the vendor posts intent-check results.")
    max_attempts: int = Field(5, ge=1, le=10, description="Wrong SMS codes before a signing session locks.")

    @field_validator("base_url", "notify_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value:
            value = value.strip().rstrip("/")
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError("must be an http:// or https:// address")
        return value

    @field_validator("vendor_roots_pem")
    @classmethod
    def _pem(cls, value: str) -> str:
        if value.strip() and not load_roots(value):
            raise ValueError("no '-----BEGIN CERTIFICATE-----' block found")
        return value
