"""Typed keys of what the application holds: no globals, no string keys."""

import asyncio

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from core.settings import Settings
from gateway.settings import GatewaySettings

settings_key = web.AppKey("settings", Settings)
gateway_settings_key = web.AppKey("gateway_settings", GatewaySettings)
engine_key = web.AppKey("engine", AsyncEngine)
token_cache_key = web.AppKey("token_cache", "TokenCache")
limiter_key = web.AppKey("limiter", "RateLimiter")
sign_in_limiter_key = web.AppKey("sign_in_limiter", "SignInLimiter")
passwords_key = web.AppKey("passwords", "PasswordWorkers")
metrics_key = web.AppKey("metrics", "Metrics")
redis_key = web.AppKey("redis", "Redis | None")
http_client_key = web.AppKey("http_client", "ClientSession")
# The card funding source (core/funding/stripe.py), or None when Stripe is not configured.
funding_source_key = web.AppKey("funding_source", "StripeSource | None")
claim_verifications_key = web.AppKey("claim_verifications", asyncio.Semaphore)
endpoints_key = web.AppKey("endpoints", list)
rate_limit_key = web.RequestKey("rate_limit", tuple)
raw_body_key = web.RequestKey("raw_body", bytes)
batcher_key = web.AppKey("batcher", "FlattrBatcher")
ack_batcher_key = web.AppKey("ack_batcher", "AckBatcher")
token_batcher_key = web.AppKey("token_batcher", "TokenBatcher")
# Set when the process begins to stop: long polls answer at once, /readyz says 503.
stopping_key = web.AppKey("stopping", asyncio.Event)
migration_heads_key = web.AppKey("migration_heads", frozenset)
