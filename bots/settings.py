"""What every chat bot reads from the environment (prefix FLATTR_), once, at start."""

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class BotSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLATTR_", extra="ignore", frozen=True)

    gateway_url: str = Field(default="http://127.0.0.1:8080", pattern=r"^https?://[^\s]+$")
    gateway_token: SecretStr | None = None  # a token with the `bot` scope
    redis_url: str | None = None  # where the bot remembers authors; unset: in-process
    # Where members reach the web pages (their statements): the gateway's public address.
    public_url: str = Field(default="http://127.0.0.1:8080", pattern=r"^https?://[^\s]+$")
