"""Per-clinic settings of the SMSC plugin. ``SecretStr`` fields are stored encrypted and never shown again."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr

from plugin_sdk import N_

DEFAULT_ENDPOINT = "https://smsc.ru/sys/"
#: What goes into the callback hash when SMSC is asked for one (``md5``/``sha1``/``crc32`` in the handler URL).
#: SMSC does not publish the exact input string, so it is a setting; ``{secret}`` is the callback secret.
DEFAULT_HASH_RECIPE = "{id}:{phone}:{status}:{time}:{err}:{secret}"


class SmscSettings(BaseModel):
    endpoint: str = Field(
        DEFAULT_ENDPOINT,
        pattern=r"^https?://[^\s/]+",
        title=N_("API address"),
        description=N_("Base URL of the SMSC HTTP API; send.php, status.php and balance.php are below it. "
                       "Backup host: https://www2.smsc.ru/sys/."),
    )
    login: str = Field("", max_length=100, title=N_("Login"),
                       description=N_("SMSC account login. Leave empty to use an API key as the password."))
    password: SecretStr | None = Field(None, title=N_("Password or API key"))
    sender: str | None = Field(None, min_length=1, max_length=11, title=N_("Sender name"),
                               description=N_("A sender name registered in the SMSC account (up to 11 characters)."))
    timeout_seconds: float = Field(10.0, gt=0, le=60, title=N_("Timeout (seconds)"))
    callback_hash: Literal["none", "md5", "sha1", "crc32"] = Field(
        "md5", title=N_("Callback hash"),
        description=N_("The hash named in the handler URL set in the SMSC account (e.g. ...?fmt=3&md5)."),
    )
    callback_hash_recipe: str = Field(
        DEFAULT_HASH_RECIPE, min_length=8, max_length=300, title=N_("Callback hash input"),
        description=N_("The string SMSC hashes: callback fields in braces, {secret} for the callback secret."),
    )
    callback_secret: SecretStr | None = Field(
        None, title=N_("Callback secret"), description=N_("Defaults to the account password."))
