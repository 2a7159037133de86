"""A real gateway on a real database of each backend, driven through aiohttp's test client."""

import uuid
from collections.abc import Awaitable, Callable

import pytest
from aiohttp.test_utils import TestServer

from core.settings import Settings
from gateway.app import create_app
from gateway.server import GatewayRunner
from gateway.settings import GatewaySettings
from support import require_redis


class GatewayTestServer(TestServer):
    """The app served as `flattr serve` serves it: even unparsable requests get JSON errors."""

    async def _make_runner(self, **kwargs):
        return GatewayRunner(self.app, **kwargs)


@pytest.fixture
def gateway_settings() -> GatewaySettings:
    return GatewaySettings(claims_allow_private=True, claims_scheme="http", demo=False,
                           token_cache_seconds=2.0)


@pytest.fixture(params=["in-process", "redis"])
def limits_store(request) -> str | None:
    """Every API test runs with rate limits in-process and with a real Redis."""
    return None if request.param == "in-process" else require_redis()


@pytest.fixture
def redis_namespace() -> str:
    """Each test its own Redis keys, so counters of one test never limit another."""
    return f"flattr-test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def make_client(aiohttp_client, database_url, gateway_settings, redis_namespace):
    async def make(redis_url: str | None = None, **overrides) -> object:
        settings = Settings(database_url=database_url, redis_url=redis_url)
        options = gateway_settings.model_copy(
            update={"redis_namespace": redis_namespace, **overrides})
        return await aiohttp_client(GatewayTestServer(create_app(settings, options)))

    return make


@pytest.fixture
async def client(make_client, limits_store):
    return await make_client(redis_url=limits_store)


class Member:
    """A signed-up member and a token of theirs."""

    def __init__(self, client, handle: str, token: str, member_id: int) -> None:
        self.client = client
        self.handle = handle
        self.token = token
        self.id = member_id

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def call(self, method: str, path: str, *, status: int | None = None, **kwargs):
        headers = {**self.auth, **kwargs.pop("headers", {})}
        response = await self.client.request(method, "/api/v1" + path, headers=headers,
                                             **kwargs)
        body = await response.json()
        if status is not None:
            assert response.status == status, body
        return body


SignUp = Callable[..., Awaitable[Member]]


@pytest.fixture
def sign_up(client) -> SignUp:
    async def make(handle: str, *, scopes=("read", "flattr", "account"), on=None) -> Member:
        target = on or client
        made = await target.post("/api/v1/members", json={
            "handle": handle, "email": f"{handle}@example.com", "password": "a long password"})
        assert made.status == 201, await made.text()
        member_id = (await made.json())["member"]["id"]
        issued = await target.post("/api/v1/tokens", json={
            "handle": handle, "password": "a long password", "scopes": list(scopes)})
        assert issued.status == 201, await issued.text()
        return Member(target, handle, (await issued.json())["token"], member_id)

    return make


@pytest.fixture
def privileged(engine):
    """Make a member and a token with any scopes, as the operator's command would."""
    from core import funding, members, tokens

    async def make(handle: str, scopes: str, *, credit: int = 0) -> tuple[int, str]:
        async with engine.begin() as conn:
            member = await members.create_member(conn, handle, is_admin="admin" in scopes)
            if credit:
                await funding.credit(conn, member.id, credit, idempotency_key=f"t:{handle}")
            issued = await tokens.issue_token(conn, member.id, tokens.parse_scopes(scopes),
                                              may_grant_privileged=True)
        return member.id, issued.token

    return make
