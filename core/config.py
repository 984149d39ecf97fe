"""Process settings, read from the environment (prefix ``PRAXIS_``) once at start-up."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PRAXIS_", extra="ignore")

    data_dir: Path = Field(Path("praxis-data"), description="Embedded database, key file and backups.")
    database_url: str | None = Field(
        None,
        validation_alias=AliasChoices("DATABASE_URL", "PRAXIS_DATABASE_URL"),
        description="SQLAlchemy URL; default: SQLite file in data_dir.",
    )
    plugins_file: Path = Field(Path("plugins.toml"), description="Install-level plugin policy.")
    master_key: str | None = Field(
        None, description="Comma-separated 'id:base64key' entries; the first encrypts, all decrypt."
    )
    key_file: Path | None = Field(None, description="File holding the master key(s); default data_dir/master.key.")
    state_refresh_seconds: float = Field(2.0, description="How often a process re-reads plugin state.")
    embedded_worker: bool = Field(True, description="Run the outbox worker inside the app process.")
    circuit_threshold: int = Field(5, description="Consecutive failures that mark a plugin unhealthy.")
    hook_timeout_seconds: float = Field(10.0, description="Time budget of one plugin hook call.")
    secure_cookies: bool = Field(False, description="Send the session cookie only over HTTPS.")

    @property
    def url(self) -> str:
        if self.database_url:
            url = self.database_url
            if url.startswith("postgresql://") or url.startswith("postgres://"):
                url = "postgresql+psycopg://" + url.split("://", 1)[1]
            return url
        return f"sqlite:///{(self.data_dir / 'praxis.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
