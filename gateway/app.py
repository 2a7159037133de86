"""The application factory: every resource born and closed in a cleanup context."""

import asyncio
import gc
import logging
from collections.abc import AsyncIterator

import stripe
from aiohttp import ClientSession, ClientTimeout, web
from redis.asyncio import Redis

from core import migrate
from core.db import create_engine
from core.funding.stripe import StripeSource
from core.settings import Settings
from gateway import keys, revocations
from gateway.auth import TokenCache
from gateway.batcher import AckBatcher, FlattrBatcher, TokenBatcher
from gateway.claim_proof import verifier_session
from gateway.metrics import Metrics
from gateway.middlewares import edge_middleware
from gateway.passwords import PasswordWorkers
from gateway.pauses import watch_pauses
from gateway.ratelimit import RateLimiter, SignInLimiter, WindowCounts
from gateway.routes import setup_routes
from gateway.settings import GatewaySettings

log = logging.getLogger(__name__)


async def database(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.settings_key]
    gateway_settings = app[keys.gateway_settings_key]
    app[keys.engine_key] = create_engine(settings.database_url,
                                         **_pool_options(settings, gateway_settings))
    app[keys.batcher_key] = FlattrBatcher(
        app[keys.engine_key], app[keys.metrics_key], max_batch=gateway_settings.flattr_batch_max,
        max_concurrent_writes=gateway_settings.flattr_writes_at_once,
        log_over_seconds=gateway_settings.pause_log_ms / 1000,
    )
    app[keys.ack_batcher_key] = AckBatcher(app[keys.engine_key], max_batch=500,
                                           max_concurrent_writes=1)
    app[keys.token_batcher_key] = TokenBatcher(app[keys.engine_key], max_batch=256,
                                               max_concurrent_writes=2)
    yield
    await app[keys.token_batcher_key].close()
    await app[keys.ack_batcher_key].close()
    await app[keys.batcher_key].close()
    await app[keys.engine_key].dispose()


def _pool_options(settings: Settings, gateway_settings: GatewaySettings) -> dict:
    if settings.database_url.startswith("sqlite"):
        return {}
    # No pre-ping on the click path: a dead connection fails one request with a 503 and
    # SQLAlchemy then recycles the whole pool.
    # Bounded waits: a PostgreSQL that does not answer gives 503s within seconds, not hangs.
    return {"pool_size": gateway_settings.database_pool_size,
            "max_overflow": gateway_settings.database_pool_overflow, "pool_timeout": 5,
            "pool_pre_ping": False, "connect_args": {"timeout": 2, "command_timeout": 5}}


async def redis_client(app: web.Application) -> AsyncIterator[None]:
    url = app[keys.settings_key].redis_url
    client = Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5) if url else None
    app[keys.redis_key] = client
    gateway_settings = app[keys.gateway_settings_key]
    namespace = gateway_settings.redis_namespace
    requests = WindowCounts(redis=client, prefix=f"{namespace}:rl")
    app[keys.limiter_key] = RateLimiter(
        per_token=gateway_settings.rate_limit_per_minute,
        per_address=gateway_settings.rate_limit_per_minute_per_address,
        counts=requests,
        per_bot=gateway_settings.rate_limit_per_minute_per_bot,
    )
    sign_ins = WindowCounts(gateway_settings.sign_in_window_seconds, client,
                            f"{namespace}:sign-in")
    app[keys.sign_in_limiter_key] = SignInLimiter(
        per_handle_and_address=gateway_settings.sign_in_failures_per_handle_and_address,
        per_address=gateway_settings.sign_in_failures_per_address,
        per_handle=gateway_settings.sign_in_failures_per_handle,
        sign_ups_per_address=gateway_settings.sign_ups_per_address,
        counts=sign_ins,
    )
    loop = asyncio.get_running_loop()
    background = [loop.create_task(requests.run_sync()), loop.create_task(sign_ins.run_sync())]
    if client is not None:
        background.append(asyncio.get_running_loop().create_task(
            revocations.listen(client, namespace, app[keys.token_cache_key])))
    yield
    for task in background:
        task.cancel()
    # Bounded: a task stuck in a library that swallowed its cancellation must not hold
    # the shutdown forever.
    await asyncio.wait(background, timeout=2)
    if client is not None:
        await client.aclose()


async def http_client(app: web.Application) -> AsyncIterator[None]:
    gateway_settings = app[keys.gateway_settings_key]
    app[keys.http_client_key] = verifier_session(gateway_settings)
    app[keys.claim_verifications_key] = asyncio.Semaphore(
        gateway_settings.claims_verifications_at_once)
    yield
    await app[keys.http_client_key].close()


async def funding_source(app: web.Application) -> AsyncIterator[None]:
    """Card funding through Stripe, on an HTTP session of its own; None when unconfigured."""
    settings = app[keys.settings_key]
    if not settings.stripe_configured:
        app[keys.funding_source_key] = None
        yield
        return
    session = ClientSession(timeout=ClientTimeout(total=20, connect=5))
    app[keys.funding_source_key] = StripeSource(settings, stripe.AIOHTTPClient(session=session))
    yield
    await session.close()


async def password_workers(app: web.Application) -> AsyncIterator[None]:
    app[keys.passwords_key] = PasswordWorkers(
        app[keys.gateway_settings_key].password_hashes_at_once)
    yield
    app[keys.passwords_key].close()


async def stopping(app: web.Application) -> None:
    """The server stopped accepting and waits for the requests in flight: a long poll ends
    now instead of holding the stop."""
    app[keys.stopping_key].set()


async def freeze_startup_objects(_app: web.Application) -> None:
    """Keep the collector off the objects made at startup (modules, models, pools).

    A full collection walks every tracked object, and under load it ran about once a second
    and stopped the loop for 70 ms: every request in flight waited for it.
    """
    gc.collect()
    gc.freeze()


def create_app(
    settings: Settings, gateway_settings: GatewaySettings | None = None
) -> web.Application:
    gateway_settings = gateway_settings or GatewaySettings()
    app = web.Application(
        middlewares=[edge_middleware(gateway_settings.cors_origins)],
        client_max_size=1024 * 1024,
        # GET /things carries a URL of up to 2048 characters in its query: percent-encoded
        # UTF-8 is up to 12 bytes a character, beyond aiohttp's 8190-byte request line.
        handler_args={"max_line_size": 64 * 1024},
    )
    app[keys.settings_key] = settings
    app[keys.gateway_settings_key] = gateway_settings
    app[keys.metrics_key] = Metrics()
    app[keys.token_cache_key] = TokenCache(gateway_settings.token_cache_seconds, {}, set())
    app[keys.migration_heads_key] = migrate.head_revisions()
    app[keys.stopping_key] = asyncio.Event()
    app.on_shutdown.append(stopping)
    app.cleanup_ctx.extend([
        watch_pauses(app[keys.metrics_key].pauses, gateway_settings.pause_log_ms / 1000),
        database, redis_client, http_client, funding_source, password_workers])
    setup_routes(app)
    return app
