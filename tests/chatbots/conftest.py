"""A real gateway on loopback for the bots (SQLite and PostgreSQL), its bot token, members
with a web token of their own, and the forwarding proxy the bots' client talks through."""

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp.test_utils import TestServer

from bots.client import GatewayClient, Retrying
from core import members, tokens
from core.settings import Settings
from gateway.app import create_app
from gateway.server import GatewayRunner
from gateway.settings import GatewaySettings
from gateway_proxy import GatewayProxy
from stripe_standin import SECRET_KEY, WEBHOOK_SECRET, StripeStandIn

FAST = Retrying(attempts=4, backoff_seconds=0.05, backoff_max_seconds=0.2,
                retry_after_max_seconds=3.0, timeout_seconds=10.0)


class GatewayTestServer(TestServer):
    async def _make_runner(self, **kwargs):
        return GatewayRunner(self.app, **kwargs)


@pytest.fixture
async def gateway_server(database_url, request) -> AsyncIterator[TestServer]:
    """The gateway; with card top-ups through a Stripe stand-in (`stripe_api`) when a test
    asks for it: `@pytest.mark.parametrize("gateway_server", ["card"], indirect=True)`."""
    stripe, card = None, {}
    if getattr(request, "param", None) == "card":
        stripe = await StripeStandIn().start()
        card = {"stripe_secret_key": SECRET_KEY, "stripe_webhook_secret": WEBHOOK_SECRET,
                "stripe_api_base": stripe.base}
    settings = Settings(database_url=database_url, redis_url=None, **card)
    options = GatewaySettings(demo=False, token_cache_seconds=2.0)
    server = GatewayTestServer(create_app(settings, options), host="127.0.0.1")
    await server.start_server()
    server.stripe = stripe
    yield server
    await server.close()
    if stripe is not None:
        await stripe.close()


@pytest.fixture
def stripe_api(gateway_server) -> StripeStandIn | None:
    """The Stripe stand-in of a gateway with card top-ups (None without)."""
    return gateway_server.stripe


@pytest.fixture
async def proxy(gateway_server) -> AsyncIterator[GatewayProxy]:
    made = await GatewayProxy(str(gateway_server.make_url("")).rstrip("/")).start()
    yield made
    await made.close()


@dataclass
class WebMember:
    """A member as the web knows them: a token with every member scope."""

    id: int
    handle: str
    token: str


@pytest.fixture
def web_member(engine):
    async def make(handle: str, *, identity: str | None = None) -> WebMember:
        async with engine.begin() as conn:
            made = await members.create_member(conn, handle)
            if identity is not None:
                await members.link_identity(conn, made.id, identity)
            issued = await tokens.issue_token(conn, made.id,
                                              frozenset({"read", "flattr", "account"}))
        return WebMember(made.id, handle, issued.token)

    return make


@pytest.fixture
async def bot_token(engine) -> str:
    async with engine.begin() as conn:
        operator = await members.create_member(conn, "operator")
        issued = await tokens.issue_token(conn, operator.id, frozenset({"bot"}),
                                          may_grant_privileged=True)
    return issued.token


@pytest.fixture
async def gateway(proxy, bot_token) -> AsyncIterator[GatewayClient]:
    """The bots' client, through the proxy, with short back-off waits."""
    async with GatewayClient(proxy.url, bot_token, retrying=FAST) as client:
        yield client
