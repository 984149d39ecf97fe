"""A fixture plugin for the UI tests: a menu item, a settings schema with a secret, a connection test, and
its own catalog (Korean), compiled on first use into a temporary folder."""

from __future__ import annotations

import tempfile
from functools import cache
from pathlib import Path
from typing import Literal

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from pydantic import BaseModel, Field, SecretStr

from plugin_sdk import N_, Category, ConnectionCheck, MenuItem, PluginManifest, hookimpl

KOREAN = {
    "Reminders": "예약 알림",
    "Sends appointment reminders by text message.": "문자 메시지로 예약 알림을 보냅니다.",
    "Sender name": "발신자 이름",
    "Daily limit": "하루 최대 발송 수",
    # Collides with a core msgid: the core's translation must win in the core's own screens.
    "Settings": "알림 설정값",
}


class Settings(BaseModel):
    sender_name: str = Field("Clinic", min_length=2, max_length=11, title=N_("Sender name"))
    daily_limit: int = Field(100, ge=1, le=500, title=N_("Daily limit"))
    channel: Literal["sms", "email"] = "sms"
    api_token: SecretStr | None = None


manifest = PluginManifest(
    name="reminders", version="2.1.0", title=N_("Reminders"),
    description=N_("Sends appointment reminders by text message."),
    category=Category.messaging, countries=("KR", "HU"), api=">=1.0,<2", settings=Settings,
)


@cache
def _locale_dir() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="praxis-reminders-locale-"))
    catalog = Catalog(locale="ko", domain=manifest.domain)
    for msgid, text in KOREAN.items():
        catalog.add(msgid, text)
    target = folder / "ko" / "LC_MESSAGES"
    target.mkdir(parents=True)
    with open(target / f"{manifest.domain}.mo", "wb") as handle:
        write_mo(handle, catalog)
    return folder


@hookimpl
def praxis_translations_dir() -> Path:
    return _locale_dir()


@hookimpl
def praxis_menu_items(ctx):  # type: ignore[no-untyped-def]
    return [MenuItem(title=N_("Reminders"), url="/clinics/{clinic_id}/x/reminders", order=50)]


@hookimpl
def praxis_test_connection(ctx, settings):  # type: ignore[no-untyped-def]
    token = settings.api_token.get_secret_value() if settings.api_token else ""
    if token == "good-token":
        return ConnectionCheck(True, f"authenticated as {settings.sender_name}")
    return ConnectionCheck(False, "the vendor refused the API token")
