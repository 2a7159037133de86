"""Settings of the HTTP surface, beside the core's (same FLATTR_ prefix)."""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLATTR_", extra="ignore", frozen=True)

    public_url: str = "http://127.0.0.1:8080"
    # Origins allowed to call the API with a bearer token (the browser extension's).
    cors_origins: tuple[str, ...] = ("chrome-extension://*", "moz-extension://*")
    rate_limit_per_minute: int = Field(default=600, ge=1)
    rate_limit_per_minute_per_address: int = Field(default=1200, ge=1)
    # A bot token's requests (it delivers every member's messages): counted against the
    # token, not its address.
    rate_limit_per_minute_per_bot: int = Field(default=120_000, ge=1)
    # The longest a bot's lease waits for a message (long poll); tests shorten it.
    outbox_wait_max_seconds: float = Field(default=30.0, ge=0, le=30)
    # How often a waiting lease looks again.
    outbox_poll_seconds: float = Field(default=0.5, gt=0, le=5)
    # Password guessing: failed sign-ins a window, per handle from one client address, per
    # client address, and per handle from all addresses (a guess spread over many addresses;
    # higher, so that one guesser cannot lock the owner out).
    sign_in_failures_per_handle_and_address: int = Field(default=10, ge=1)
    sign_in_failures_per_address: int = Field(default=30, ge=1)
    sign_in_failures_per_handle: int = Field(default=100, ge=1)
    # Sign-ups a client address may make in the same window (each costs an argon2 hash).
    sign_ups_per_address: int = Field(default=10, ge=1)
    sign_in_window_seconds: int = Field(default=15 * 60, ge=1, le=24 * 3600)
    # Argon2 runs in worker threads, this many hashes at once (each takes a CPU for ~0.2 s).
    password_hashes_at_once: int = Field(default=2, ge=1, le=64)
    # Claim proofs are fetched from the claimed host; loopback is allowed only in tests.
    claims_allow_private: bool = False
    claims_fetch_timeout_seconds: float = Field(default=5.0, gt=0, le=30)
    claims_fetch_max_bytes: int = Field(default=256 * 1024, ge=1024)
    claims_scheme: str = "https"
    claims_port: int | None = None  # tests serve proofs on a loopback port
    # Proofs fetched at once; one more verification is answered 503 busy, not queued.
    claims_verifications_at_once: int = Field(default=4, ge=1, le=64)
    token_cache_seconds: float = Field(default=60.0, ge=0)
    demo: bool = True
    # The click path: concurrent flattrs are written together, this many batches at once.
    flattr_batch_max: int = Field(default=256, ge=1, le=10_000)
    flattr_writes_at_once: int = Field(default=1, ge=1, le=64)
    # PostgreSQL connections of a process: kept open, and opened beyond them under load.
    database_pool_size: int = Field(default=20, ge=1, le=1000)
    database_pool_overflow: int = Field(default=20, ge=0, le=1000)
    # A request body must have arrived this long after its head (a stalled one holds a handler).
    request_body_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    # A pause this long is logged: of the event loop (a late wake-up, a garbage collection)
    # or of the requests in a batched write of flattrs.
    pause_log_ms: float = Field(default=100.0, gt=0)
    redis_namespace: str = "flattr"  # prefix of every Redis key and channel
