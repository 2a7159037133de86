"""Every route of the gateway, in one place."""

from aiohttp import web

from gateway import keys
from gateway.api import Api, Endpoint, register
from gateway.handlers import (
    admin,
    bot,
    claims,
    flattrs,
    fundings,
    health,
    identities,
    members,
    messages,
    money,
    notifications,
    outbox,
    payout_account,
    sign_in_links,
    subscriptions,
    things,
    tokens,
    webhooks,
)
from gateway.openapi import API_PREFIX
from gateway.pages import setup_pages

API_MODULES = (members, notifications, messages, tokens, flattrs, things, claims, identities,
               subscriptions, money, fundings, payout_account, bot, sign_in_links, outbox,
               admin)


def endpoints() -> list[Endpoint]:
    return [e for module in API_MODULES for e in module.api.endpoints]


def setup_routes(app: web.Application) -> None:
    found = endpoints()
    app[keys.endpoints_key] = found
    register(app, Api(found), API_PREFIX)
    app.router.add_get(API_PREFIX + "/openapi.json", health.openapi)
    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/readyz", health.readyz)
    app.router.add_get("/metrics", health.metrics)
    app.router.add_post("/webhooks/stripe", webhooks.stripe_webhook)
    setup_pages(app)
