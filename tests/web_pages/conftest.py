"""A real gateway on a real database of each backend, its pages driven as a browser would:
cookies kept, forms posted with their CSRF token."""

import re
import uuid
from html import unescape

import pytest
from aiohttp import CookieJar
from aiohttp.test_utils import TestClient, TestServer

from core import members, tokens
from core.settings import Settings
from gateway.app import create_app
from gateway.pages.settings import PagesSettings
from gateway.pages.visits import pages_settings_key
from gateway.settings import GatewaySettings

CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


class Browser:
    """An aiohttp client with its own cookie jar that reads forms' CSRF tokens from pages."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    async def get(self, path: str, status: int | None = 200, **kwargs) -> str:
        response = await self.client.get(path, allow_redirects=True, **kwargs)
        text = await response.text()
        if status is not None:
            assert response.status == status, (response.status, text[:2000])
        return text

    async def csrf(self, path: str) -> str:
        found = CSRF_FIELD.search(await self.get(path))
        assert found, f"no form with a CSRF token on {path}"
        return unescape(found[1])

    async def submit(self, page: str, action: str, fields: dict[str, str], *,
                     status: int | None = 200, **kwargs):
        """Post a form of `page` to `action` as the browser would; the final answer."""
        token = await self.csrf(page)
        response = await self.client.post(action, data={"csrf": token, **fields},
                                          allow_redirects=True, **kwargs)
        text = await response.text()
        if status is not None:
            assert response.status == status, (response.status, text[:3000])
        return response, text

    async def sign_up(self, handle: str, password: str = "a long password",
                      email: str = "") -> str:
        _, text = await self.submit("/sign-up", "/sign-up", {
            "handle": handle, "password": password, "email": email or f"{handle}@example.com"})
        assert "Dashboard" in text
        return text


@pytest.fixture
def pages_settings() -> PagesSettings:
    return PagesSettings(sandbox_funding=True)


@pytest.fixture
def make_app(database_url, pages_settings):
    def make(redis_url: str | None = None, public_url: str | None = None,
             pages: PagesSettings | None = None, core: dict | None = None, **overrides):
        """`core`: more Settings (Stripe's, say); `overrides`: GatewaySettings."""
        settings = Settings(database_url=database_url, redis_url=redis_url,
                            **({"public_url": public_url} if public_url else {}), **(core or {}))
        gateway_settings = GatewaySettings(
            claims_allow_private=True, claims_scheme="http", demo=False,
            redis_namespace=f"flattr-test-{uuid.uuid4().hex[:10]}", **overrides)
        app = create_app(settings, gateway_settings)
        app[pages_settings_key] = pages or pages_settings
        return app

    return make


@pytest.fixture
async def new_browser(make_app):
    """Browsers on one gateway: each call a new visitor with a cookie jar of their own."""
    servers: list[TestServer] = []
    clients: list[TestClient] = []

    async def make(**overrides) -> Browser:
        if not servers:
            servers.append(TestServer(make_app(**overrides), host="127.0.0.1"))
            await servers[0].start_server()
        client = TestClient(servers[0], cookie_jar=CookieJar(unsafe=True))
        await client.start_server()
        clients.append(client)
        return Browser(client)

    yield make
    for client in clients:
        await client.close()
    for server in servers:
        await server.close()


@pytest.fixture
async def browser(new_browser) -> Browser:
    return await new_browser()


@pytest.fixture
def token_for(engine):
    """A member made as the operator's command makes one, with a token of any scopes."""

    async def make(handle: str, scopes: str) -> str:
        async with engine.begin() as conn:
            made = await members.create_member(conn, handle, is_admin="admin" in scopes)
            issued = await tokens.issue_token(conn, made.id, tokens.parse_scopes(scopes),
                                              may_grant_privileged=True)
        return issued.token

    return make
