"""What every chat bot reads from the environment (prefix FLATTR_), once, at start."""

from collections.abc import Callable
from types import NoneType
from typing import Annotated, Any, Literal, get_args

from pydantic import BeforeValidator, Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _any_case(case: Callable[[str], str]) -> BeforeValidator:
    return BeforeValidator(lambda value: case(value.strip()) if isinstance(value, str) else value)


class BotSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLATTR_", extra="ignore", frozen=True)

    gateway_url: str = Field(default="http://127.0.0.1:8080", pattern=r"^https?://[^\s]+$")
    gateway_token: SecretStr | None = None  # a token with the `bot` scope
    redis_url: str | None = None  # where the bot remembers authors; unset: in-process
    # Where members reach the web pages (their statements): the gateway's public address.
    public_url: str = Field(default="http://127.0.0.1:8080", pattern=r"^https?://[^\s]+$")
    # Log lines on standard error as the gateway writes them: "text", or "json" (one object
    # a line, for a log collector); and the least level written.
    log_format: Annotated[Literal["text", "json"], _any_case(str.lower)] = "text"
    log_level: Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR"], _any_case(str.upper)] = (
        "INFO")

    @field_validator("*", mode="before")
    @classmethod
    def empty_means_none(cls, value: Any, info: ValidationInfo) -> Any:
        """An env file's `FLATTR_GATEWAY_TOKEN=`, not filled in yet: unset (None), not ''.
        (A setting that cannot be None is refused empty.)"""
        blank = isinstance(value, str) and not value.strip()
        if blank and NoneType in get_args(cls.model_fields[str(info.field_name)].annotation):
            return None
        return value
