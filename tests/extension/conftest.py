"""Fixtures of the extension's end-to-end tests: gateway, member, test site and browser."""

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from browser_harness import (
    CHROMIUM,
    EXTENSION,
    PUBLIC_HOST,
    ExtensionBrowser,
    GatewayProcess,
    TestSite,
    chromium_arguments,
    playwright_api,
    with_page_access,
)

from core import claims, funding, members
from core.money import MICROS_PER_UNIT
from core.settings import Settings
from support import unavailable

PASSWORD = "correct horse battery staple"


@dataclass
class Member:
    handle: str
    password: str
    id: int


@pytest.fixture
async def gateway(database_url: str, tmp_path: Path) -> AsyncIterator[GatewayProcess]:
    """The gateway, starting: it boots while the browser launches; `member` waits for it."""
    process = GatewayProcess(database_url, tmp_path)
    await process.spawn()
    try:
        yield process
    finally:
        await process.stop()


@pytest.fixture
async def member(gateway: GatewayProcess, engine, database_url: str) -> Member:
    """A member signed up through the API, with funds, a budget, and a claim of their own
    pages; another member, alice, owns /alice/ on the test site (claims ignore ports)."""
    handle = "reader"
    await gateway.ready()
    async with aiohttp.ClientSession() as session, session.post(
        f"{gateway.api}/members",
        json={"handle": handle, "email": "reader@example.org", "password": PASSWORD},
    ) as response:
        assert response.status == 201, await response.text()
        member_id = (await response.json())["member"]["id"]
    settings = Settings(database_url=database_url)
    async with engine.begin() as conn:
        await funding.credit(conn, member_id, 50 * MICROS_PER_UNIT,
                             idempotency_key=f"e2e-{uuid.uuid4().hex}")
        await members.set_budget(conn, member_id, 10 * MICROS_PER_UNIT, settings)
        own = await claims.create_claim(conn, member_id, "127.0.0.1", "/reader/")
        await claims.mark_verified(conn, own.id)
        alice = await members.create_member(conn, "alice", password=PASSWORD)
        theirs = await claims.create_claim(conn, alice.id, "127.0.0.1", "/alice/")
        await claims.mark_verified(conn, theirs.id)
    return Member(handle, PASSWORD, member_id)


@pytest.fixture
async def site() -> AsyncIterator[TestSite]:
    served = TestSite()
    await served.start()
    try:
        yield served
    finally:
        await served.stop()


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[ExtensionBrowser]:
    async for launched in launch(tmp_path, EXTENSION):
        yield launched


@pytest.fixture
async def granted_browser(tmp_path: Path) -> AsyncIterator[ExtensionBrowser]:
    """The extension as after the member turned automatic flattring and the page status on and
    gave it access to web pages and tabs (a headless test cannot click the browser's permission
    prompt), and public
    host names (`PUBLIC_HOST`) that reach the test site on 127.0.0.1."""
    async for launched in launch(tmp_path, with_page_access(EXTENSION, tmp_path / "extension"),
                                 [f"--host-resolver-rules=MAP *.{PUBLIC_HOST} 127.0.0.1"]):
        yield launched


async def launch(tmp_path: Path, extension: Path,
                 extra: list[str] | None = None) -> AsyncIterator[ExtensionBrowser]:
    if not CHROMIUM.exists():
        unavailable(f"no Chromium at {CHROMIUM}: apt-get install -y chromium "
                    "(or set FLATTR_TEST_CHROMIUM)")
    async with playwright_api().async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=str(CHROMIUM), headless=True,
            args=[*chromium_arguments(extension), *(extra or [])],
            ignore_default_args=["--disable-extensions"],
        )
        try:
            worker = (context.service_workers[0] if context.service_workers
                      else await context.wait_for_event("serviceworker", timeout=15_000))
            browser = ExtensionBrowser(context, worker)
            await browser.run("() => globalThis.flattr.ready")  # the extension is ready
            yield browser
        finally:
            await context.close()
