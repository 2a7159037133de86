"""What every chat bot reads from the environment (prefix FLATTR_), once, at start."""

from types import NoneType
from typing import Any, get_args

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class BotSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLATTR_", extra="ignore", frozen=True)

    gateway_url: str = Field(default="http://127.0.0.1:8080", pattern=r"^https?://[^\s]+$")
    gateway_token: SecretStr | None = None  # a token with the `bot` scope
    redis_url: str | None = None  # where the bot remembers authors; unset: in-process
    # Where members reach the web pages (their statements): the gateway's public address.
    public_url: str = Field(default="http://127.0.0.1:8080", pattern=r"^https?://[^\s]+$")

    @field_validator("*", mode="before")
    @classmethod
    def empty_means_none(cls, value: Any, info: ValidationInfo) -> Any:
        """An env file's `FLATTR_GATEWAY_TOKEN=`, not filled in yet: unset (None), not ''.
        (A setting that cannot be None is refused empty.)"""
        blank = isinstance(value, str) and not value.strip()
        if blank and NoneType in get_args(cls.model_fields[str(info.field_name)].annotation):
            return None
        return value
