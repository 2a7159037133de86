"""Deployment settings, read once from the environment (prefix FLATTR_) and passed explicitly."""

from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.money import MICROS_PER_UNIT, parse_amount


def default_database_url() -> str:
    data_dir = Path(platformdirs.user_data_dir("flattr", appauthor=False))
    return f"sqlite:///{data_dir / 'flattr.db'}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLATTR_", extra="ignore", frozen=True)

    database_url: str = Field(default_factory=default_database_url)
    redis_url: str | None = None
    currency: str = "EUR"
    # Amounts: a decimal string in the environment (FLATTR_MINIMUM_BUDGET=2.50), micros in code.
    minimum_budget: int = Field(default=2 * MICROS_PER_UNIT, ge=1)
    payout_threshold: int = Field(default=10 * MICROS_PER_UNIT, ge=10_000)
    fee_bps: int = Field(default=1000, ge=0, le=10_000)
    hold_months: int = Field(default=6, ge=1, le=120)
    idle_budget: Literal["keep", "charity"] = "keep"
    # PostgreSQL memory for each sort and hash of a settlement (work_mem) and for building
    # a month's indexes (maintenance_work_mem): a month's split sorted in memory instead
    # of spilling to disk. A settlement runs once a month, in one process.
    settlement_memory: str = Field(default="1GB", pattern=r"^[1-9][0-9]{0,5}(kB|MB|GB)$")

    # Where members reach the web pages: the links in their messages start with it.
    public_url: str = Field(default="http://127.0.0.1:8080", pattern=r"^https?://[^\s]+$")
    # E-mail of the worker: smtp://user:password@host:port (STARTTLS when offered), or
    # smtps://… (TLS from the start). Unset: no e-mail is sent, and nobody can turn it on.
    smtp_url: str | None = None
    mail_from: str = "Flattr <flattr@localhost>"
    # Top-ups by card (Stripe Checkout). Without the secret key and the webhook's signing
    # secret there is no card funding, and every entry point says so. The API base is
    # Stripe's; tests point it at a stand-in on loopback.
    stripe_secret_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_api_base: str = Field(default="https://api.stripe.com", pattern=r"^https?://[^\s]+$")
    # A top-up is between these amounts; the card fee (percent in basis points, plus a fixed
    # part) is added on top and shown before paying, so the whole amount reaches the balance.
    funding_minimum: int = Field(default=5 * MICROS_PER_UNIT, ge=10_000)
    funding_maximum: int = Field(default=500 * MICROS_PER_UNIT, ge=10_000)
    stripe_fee_bps: int = Field(default=150, ge=0, le=5_000)
    stripe_fee_fixed: int = Field(default=250_000, ge=0, le=100 * MICROS_PER_UNIT)
    # Payouts by SEPA credit transfer: the platform's own account, which the bank debits.
    sepa_name: str | None = None
    sepa_iban: str | None = None
    sepa_bic: str | None = None
    sepa_schema: Literal["pain.001.001.03", "pain.001.001.09"] = "pain.001.001.09"
    # Log lines on standard error: "text" (time, level, logger, message) or "json" (one
    # object a line, for a log collector); and the least level written.
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("public_url")
    @classmethod
    def without_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("log_format", "log_level", mode="before")
    @classmethod
    def any_case(cls, value: object, info: ValidationInfo) -> object:
        if not isinstance(value, str):
            return value
        return value.strip().lower() if info.field_name == "log_format" else value.strip().upper()

    @field_validator("smtp_url")
    @classmethod
    def empty_smtp_means_none(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("stripe_secret_key", "stripe_webhook_secret", "sepa_name", "sepa_iban",
                     "sepa_bic")
    @classmethod
    def empty_means_none(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("funding_minimum", "funding_maximum", "stripe_fee_fixed")
    @classmethod
    def whole_cents(cls, value: int) -> int:
        if value % 10_000:
            raise ValueError("a top-up limit or card fee is a whole number of cents")
        return value

    @model_validator(mode="after")
    def top_up_limits_ordered(self) -> "Settings":
        if self.funding_minimum > self.funding_maximum:
            raise ValueError("FLATTR_FUNDING_MINIMUM is above FLATTR_FUNDING_MAXIMUM")
        return self

    @property
    def stripe_configured(self) -> bool:
        return bool(self.stripe_secret_key and self.stripe_webhook_secret)

    @field_validator("minimum_budget", "payout_threshold", "funding_minimum", "funding_maximum",
                     "stripe_fee_fixed", mode="before")
    @classmethod
    def amount_from_text(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_amount(value)
        return value

    @field_validator("currency")
    @classmethod
    def currency_is_a_code(cls, value: str) -> str:
        if len(value) != 3 or not value.isalpha():
            raise ValueError("currency must be a three-letter code such as EUR")
        return value.upper()

    @field_validator("redis_url")
    @classmethod
    def empty_redis_means_none(cls, value: str | None) -> str | None:
        return value or None
