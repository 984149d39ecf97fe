"""The clinic (branch) is the tenant: every record belongs to exactly one."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import JSON, Column, Field, SQLModel

from core.clock import now


class Clinic(SQLModel, table=True):
    __tablename__ = "core_clinic"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    country: str = Field(max_length=2, description="ISO 3166 alpha-2, e.g. HU")
    timezone: str = Field(max_length=64, description="IANA zone, e.g. Europe/Budapest")
    locale: str = Field(max_length=16, description="UI and message language, e.g. hu")
    address: str = Field(default="", max_length=500)
    phone: str = Field(default="", max_length=32)
    email: str = Field(default="", max_length=254)
    extra: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=now)
