"""The pieces of an end-to-end test of the browser extension.

A real gateway (`flattr serve`) in a subprocess on a loopback port, which a test may stop and
start again on the same port and database; a small web site of test pages on another
loopback port; and Chromium with the unpacked extension, driven by Playwright.

The test pages are served from 127.0.0.1 on purpose: the extension's only host permission is
the default gateway's, http://127.0.0.1/*, and Chrome match patterns ignore ports, so the
extension may read those tabs' URLs and run scripts in them as it would on any page after
the member clicks its toolbar button (activeTab), which a headless test cannot click.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from core.schema import flattrs, things
from services import free_port, port_open

if TYPE_CHECKING:
    from playwright.async_api import BrowserContext, Page, Worker

REPO = Path(__file__).resolve().parents[2]
EXTENSION = Path(os.environ.get("FLATTR_TEST_EXTENSION", REPO / "extension"))
OUTPUT = REPO / "test-output" / "extension"
CHROMIUM = Path(os.environ.get("FLATTR_TEST_CHROMIUM", "/usr/lib/chromium/chromium"))
START_TIMEOUT = 30.0
POPUP_SIZE = {"width": 340, "height": 460}


def playwright_api() -> Any:
    """playwright.async_api, or a skip (a failure under CI=true) when it is not installed."""
    try:
        return importlib.import_module("playwright.async_api")
    except ImportError:
        reason = ("Playwright for Python is missing: pip install 'playwright>=1.65' into .venv "
                  "(never `playwright install`: the tests drive the system's Chromium)")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason} (CI=true: a skipped test is a failure)", pytrace=False)
        pytest.skip(reason, allow_module_level=True)


async def eventually(probe, seconds: float = 10.0, what: str = "condition") -> Any:
    """Await `probe()` until it returns something truthy; fail with `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        found = await probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {seconds:.0f} s (last: {found!r})")
        await asyncio.sleep(0.05)


class GatewayProcess:
    """`flattr serve --no-demo` on a fixed loopback port; stop() and start() keep port and data.
    `settings` are more FLATTR_* variables for it (none of the caller's reach it)."""

    def __init__(self, database_url: str, directory: Path,
                 settings: dict[str, str] | None = None) -> None:
        self.database_url = database_url
        self.settings = settings or {}
        self.port = free_port()
        self.log = directory / "gateway.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api(self) -> str:
        return f"{self.url}/api/v1"

    def _command(self) -> list[str]:
        script = Path(sys.executable).with_name("flattr")
        executable = str(script) if script.exists() else shutil.which("flattr")
        if executable is None:
            raise RuntimeError("no `flattr` command: install the project (scripts/setup dev)")
        return [executable, "serve", "--no-demo", "--host", "127.0.0.1", "--port", str(self.port)]

    def _environment(self) -> dict[str, str]:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("FLATTR_")}
        environment["FLATTR_DATABASE_URL"] = self.database_url
        return {**environment, **self.settings}

    async def start(self) -> None:
        await self.spawn()
        await self.ready()

    async def spawn(self) -> None:
        """Start the process without waiting for it to answer (see ready())."""
        if self.process is not None and self.process.poll() is None:
            return
        deadline = time.monotonic() + START_TIMEOUT
        while port_open(self.port):
            if time.monotonic() > deadline:
                raise TimeoutError(f"port {self.port} is still taken")
            await asyncio.sleep(0.05)
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                self._command(), env=self._environment(), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )

    async def ready(self) -> None:
        """Wait until the gateway answers /healthz."""
        if self.process is None:
            raise RuntimeError("the gateway was not started")
        deadline = time.monotonic() + START_TIMEOUT
        async with aiohttp.ClientSession() as session:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"the gateway exited: {self.log.read_text()[-2000:]}")
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"{self.url}/healthz") as response:
                        if response.status == 200:
                            return
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"the gateway did not answer: {self.log.read_text()[-2000:]}")
                await asyncio.sleep(0.1)

    async def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.process.wait, 15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                await asyncio.to_thread(self.process.wait, 15)
        self.process = None
        deadline = time.monotonic() + START_TIMEOUT
        while port_open(self.port) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>{head}</head>
<body><h1>{title}</h1><p>{text}</p>{body}</body></html>"""

PAGES: dict[str, dict[str, str]] = {
    # A page with a canonical link (its query is not part of the canonical URL), a creator
    # hint and links to flattr from the context menu.
    "/articles/gardening.html": {
        "title": "Gardening in small spaces",
        "head": '<link rel="canonical" href="/articles/gardening">'
                '<meta name="flattr:account" content="alice">',
        "body": '<p><a id="linked" href="/articles/compost.html">Compost, explained</a></p>'
                '<p><a id="other" href="/alice/recipes.html">Alice\'s recipes</a></p>',
    },
    "/articles/compost.html": {"title": "Compost, explained", "head": "", "body": ""},
    "/articles/offline.html": {"title": "Written while the gateway sleeps", "head": "",
                               "body": ""},
    "/articles/long-read.html": {"title": "A long read", "head": "", "body": "<p>…</p>" * 200},
    "/alice/recipes.html": {
        "title": "Alice's recipes", "head": '<meta name="flattr:account" content="alice">',
        "body": "",
    },
    "/reader/diary.html": {"title": "My own diary", "head": "", "body": ""},
    # A page that scrolls itself, as tickers and auto-advancing feeds do: nobody reads it.
    "/articles/self-scrolling.html": {
        "title": "A page that scrolls itself", "head": "",
        "body": "<p>…</p>" * 400 + "<script>setInterval(() => { window.scrollBy(0, 40); "
                "if (scrollY + innerHeight >= document.body.scrollHeight) scrollTo(0, 0); }, 100)"
                "</script>",
    },
}


class TestSite:
    """Pages served from 127.0.0.1 on a port of their own."""

    def __init__(self) -> None:
        self.port = free_port()
        self.runner: web.AppRunner | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def public_url(self, path: str, host: str = "news") -> str:
        """The same page under a public-looking name (a `granted_browser` resolves it)."""
        return f"http://{host}.{PUBLIC_HOST}:{self.port}{path}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/{path:.*}", self._page)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def _page(self, request: web.Request) -> web.Response:
        page = PAGES.get(request.path)
        if page is None:
            raise web.HTTPNotFound()
        html = PAGE.format(text="A page for the Flattr extension's tests.", **page)
        return web.Response(text=html, content_type="text/html")


@dataclass
class Badge:
    text: str
    color: list[int]
    title: str


class ExtensionBrowser:
    """Chromium with the unpacked extension, and ways into it."""

    def __init__(self, context: BrowserContext, worker: Worker) -> None:
        self.context = context
        self.worker = worker
        self.id = worker.url.split("/")[2]

    def url(self, path: str) -> str:
        return f"chrome-extension://{self.id}/{path}"

    async def run(self, script: str, argument: Any = None) -> Any:
        """Evaluate `async (argument) => …` in the extension's service worker."""
        return await self.worker.evaluate(script, argument)

    async def storage(self) -> dict[str, Any]:
        return await self.run("""async () => ({
            local: await chrome.storage.local.get(null),
            session: await chrome.storage.session.get(null),
        })""")

    async def open(self, url: str) -> tuple[Page, int]:
        """Open a web page in a new tab; returns the page and its tab id."""
        page = await self.context.new_page()
        await page.goto(url)
        await page.bring_to_front()
        tab_id = await eventually(lambda: self.run(
            """async (url) => (await chrome.tabs.query({})).find((tab) => tab.url === url)?.id""",
            url,
        ), what=f"a tab for {url}")
        return page, tab_id

    async def popup(self, tab_id: int, page: Page | None = None) -> Page:
        """The popup for a tab, opened in a page of its own; waits for its fresh state."""
        if page is None:
            page = await self.context.new_page()
            await page.set_viewport_size(POPUP_SIZE)
        await page.goto(self.url(f"popup/popup.html?tab={tab_id}"))
        await page.wait_for_selector("main[data-state=ready]", timeout=15_000)
        return page

    async def badge(self, tab_id: int) -> Badge:
        found = await self.run("""async (tabId) => [
            await chrome.action.getBadgeText({tabId}),
            await chrome.action.getBadgeBackgroundColor({tabId}),
            await chrome.action.getTitle({tabId}),
        ]""", tab_id)
        return Badge(*found)


# Names under this domain reach the test site (Chromium's --host-resolver-rules): pages
# that look public to the extension, which never counts loopback or private addresses.
PUBLIC_HOST = "flattr-tests.example.org"


def with_page_access(extension: Path, copy: Path) -> Path:
    """A copy of the extension whose optional permissions (access to web pages, `tabs` for the
    page status, `idle`) are granted already."""
    shutil.copytree(extension, copy, ignore=shutil.ignore_patterns("*.md", "*.py"))
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["host_permissions"] += manifest.pop("optional_host_permissions")
    manifest["permissions"] += manifest.pop("optional_permissions")
    (copy / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return copy


def chromium_arguments(extension: Path) -> list[str]:
    return [
        "--headless=new", f"--disable-extensions-except={extension}",
        f"--load-extension={extension}", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync",
    ]


async def screenshot(page: Page, name: str) -> Path:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    path = OUTPUT / f"popup-{name}.png"
    await page.locator("main").screenshot(path=str(path))
    return path


def write_report(name: str, values: dict[str, Any]) -> Path:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    path = OUTPUT / f"{name}.json"
    path.write_text(json.dumps(values, indent=2) + "\n")
    return path


async def sign_in(browser: ExtensionBrowser, gateway: GatewayProcess, member: Any) -> None:
    """Sign in as the member through the options page, as a person would."""
    page = await browser.context.new_page()
    await page.goto(browser.url("options/options.html"))
    await page.wait_for_selector("main[data-state=ready]")
    await page.fill("#gateway", gateway.url)
    await page.fill("#handle", member.handle)
    await page.fill("#password", member.password)
    await page.click("#sign-in")
    await page.wait_for_selector("#signed-in:not([hidden])", timeout=10_000)
    await page.close()


async def api_get(gateway: GatewayProcess, path: str, token: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(
        f"{gateway.api}{path}", headers={"Authorization": f"Bearer {token}"}
    ) as response:
        return response.status, await response.json()


async def popup_state(popup: Page) -> dict[str, Any]:
    """What the popup shows, as text."""
    return await popup.evaluate("""() => {
        const text = (id) => {
            const element = document.getElementById(id);
            return element && !element.hidden ? element.textContent.trim() : null;
        };
        const button = document.getElementById("flattr");
        return {
            title: text("page-title"), url: text("page-url"), owner: text("owner"),
            hint: text("hint"), count: text("count"), notice: text("notice"),
            noticeKind: document.getElementById("notice").dataset.kind ?? null,
            button: button.textContent.trim(), buttonDisabled: button.disabled,
            signedOut: !document.getElementById("signed-out").hidden,
            budget: text("budget"), flattrs: text("flattr-count"), share: text("share"),
            monthNote: text("month-note"), who: text("who"), month: text("month-title"),
        };
    }""")


async def flattred_urls(engine: AsyncEngine, member_id: int) -> list[str]:
    """The URLs of the member's flattrs, as the gateway's database holds them (one per row)."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(things.c.url)
            .select_from(flattrs.join(things, things.c.id == flattrs.c.thing_id))
            .where(flattrs.c.member_id == member_id)
            .order_by(things.c.url))
        return [row.url for row in rows]
