"""Settings of the web pages, read from the environment (prefix FLATTR_) beside the others."""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class PagesSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLATTR_WEB_", extra="ignore", frozen=True)

    # "Add funds" with play money (the manual funding source), as in the demo. None: on for
    # the embedded default (SQLite without Redis), off elsewhere, where funds come from an
    # admin's credit; always off once card funding (Stripe) is configured.
    sandbox_funding: bool | None = None
    # The most one "add funds" may add, in whole units of the currency.
    sandbox_funding_max_units: int = Field(default=100, ge=1, le=10_000)
    session_days: int = Field(default=30, ge=1, le=365)
    sign_in_link_minutes: int = Field(default=15, ge=1, le=24 * 60)
    # How long a count badge is kept (and may be cached by browsers and proxies).
    badge_cache_seconds: int = Field(default=60, ge=0, le=3600)
