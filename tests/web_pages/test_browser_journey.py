"""The web pages in a real Chromium: a new member's whole journey, a creator's claim, the
settled month's statements; a card top-up to Stripe's page and a bank account for payouts;
CSRF and cookies across origins; axe-core on every page.

The gateway runs in this process on PostgreSQL (a real aiohttp server on loopback); the
creator's site is another server on another loopback port, with the Flattr button and the
well-known file; Chromium is Debian's, driven by Playwright.
"""

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from card_top_ups import checkouts
from extension.browser_harness import CHROMIUM, playwright_api

from core.periods import Period
from core.settings import Settings
from core.settlement import settle_period
from gateway.pages.claims import button_snippet
from loopback import LoopbackServer
from services import free_port
from stripe_standin import SECRET_KEY, WEBHOOK_SECRET, StripeStandIn, payload, session_paid, sign

REPO = Path(__file__).resolve().parents[2]
OUTPUT = REPO / "test-output" / "web"
AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
ARGUMENTS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PASSWORD = "a long password"
# WCAG 2.1 A and AA (labels, names, contrast, language) and the best practices that cover
# headings and landmarks.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]

pytestmark = pytest.mark.postgres_only


class CreatorSite(LoopbackServer):
    """A creator's blog: a post with the Flattr button, and the well-known proof file."""

    def __init__(self, gateway_url: str, handle: str) -> None:
        self.gateway_url = gateway_url
        self.handle = handle
        self.port = free_port()

    @property
    def post_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/post.html"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/post.html", self.post)
        app.router.add_get("/.well-known/flattr.txt", self.proof)
        app.router.add_get("/attack.html", self.attack)
        self.server = TestServer(app, host="127.0.0.1", port=self.port)
        await self.server.start_server()

    async def post(self, _request: web.Request) -> web.Response:
        return web.Response(content_type="text/html", text=(
            '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>A post</title>'
            "</head><body><main><h1>Growing tomatoes</h1><p>Water them.</p>"
            f'<p id="button">{button_snippet(self.gateway_url, self.post_url)}</p>'
            "</main></body></html>"))

    async def proof(self, _request: web.Request) -> web.Response:
        return web.Response(text=f"{self.handle}\n")

    async def attack(self, _request: web.Request) -> web.Response:
        """Another site that tries the member's session: a form and the JSON API."""
        return web.Response(content_type="text/html", text=(
            '<!doctype html><html lang="en"><head><title>Win</title></head><body>'
            f'<form id="steal" method="post" action="{self.gateway_url}/dashboard/budget">'
            '<input name="amount" value="999"><button>Win</button></form></body></html>'))


@pytest.fixture
async def gateway(make_app) -> AsyncIterator[TestServer]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    site = CreatorSite(url, "carol")
    app = make_app(public_url=url, claims_port=site.port)
    server = TestServer(app, host="127.0.0.1", port=port)
    await server.start_server()
    await site.start()
    server.site = site
    yield server
    await site.close()
    await server.close()


@pytest.fixture
async def card_gateway(make_app) -> AsyncIterator[TestServer]:
    """A gateway that takes card payments, through a stand-in of Stripe's API."""
    stripe_api = await StripeStandIn().start()
    app = make_app(core={"stripe_secret_key": SECRET_KEY, "stripe_webhook_secret": WEBHOOK_SECRET,
                         "stripe_api_base": stripe_api.base})
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()
    await stripe_api.close()


@pytest.fixture
async def chromium() -> AsyncIterator[object]:
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    async with playwright_api().async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM),
                                                   headless=True, args=ARGUMENTS)
        yield browser
        await browser.close()


async def sign_up(page, root: str, handle: str) -> None:
    await page.goto(f"{root}/sign-up")
    await page.get_by_label("Handle").fill(handle)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign up").click()
    await page.wait_for_url(f"{root}/dashboard")


async def accessibility_violations(page) -> list[dict]:
    """axe-core's violations on the page as it is (injected from node_modules)."""
    await page.add_script_tag(path=str(AXE))
    return await page.evaluate("""async (tags) => {
        const result = await axe.run(document, {runOnly: {type: "tag", values: tags}});
        return result.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" "))}));
    }""", AXE_TAGS)


class AxeChecks:
    """axe-core run on each page checked, its violations kept by the page's name."""

    def __init__(self) -> None:
        self.found: dict[str, list] = {}

    async def __call__(self, page, name: str) -> None:
        self.found[name] = await accessibility_violations(page)

    def assert_none(self) -> None:
        failing = {name: found for name, found in self.found.items() if found}
        assert not failing, f"axe-core found accessibility violations: {failing}"


async def text_of(page, test_id: str) -> str:
    return (await page.get_by_test_id(test_id).first.inner_text()).strip()


async def test_a_new_member_flattrs_through_the_button_and_both_statements_add_up(
        gateway, chromium, token_for, engine, database_url):
    if not AXE.exists():
        pytest.fail("axe-core is missing: npm install (package.json lists it)")
    OUTPUT.mkdir(parents=True, exist_ok=True)
    root = str(gateway.make_url("")).rstrip("/")
    site = gateway.site
    admin = {"Authorization": f"Bearer {await token_for('operator', 'admin')}"}
    check_accessibility = AxeChecks()
    reader_context = await chromium.new_context(bypass_csp=True, viewport={"width": 1100,
                                                                            "height": 900})
    reader = await reader_context.new_page()
    await reader.goto(root)
    await check_accessibility(reader, "home")
    await reader.goto(f"{root}/sign-up")
    await check_accessibility(reader, "sign-up")
    await sign_up(reader, root, "reader")

    # Funds credited by an admin, then the budget set on the dashboard.
    credited = await reader.request.post(f"{root}/api/v1/admin/credits", headers=admin,
                                         data={"handle": "reader", "amount": "20"})
    assert credited.status == 201, await credited.text()
    await reader.goto(f"{root}/dashboard")
    assert await text_of(reader, "giving") == "€20.00"
    await reader.get_by_label("Budget a month (EUR)").fill("5")
    await reader.get_by_role("button", name="Save the budget").click()
    assert await text_of(reader, "budget") == "€5.00"

    # The button on the creator's site: its badge loads, its link asks for one click.
    await reader.goto(site.post_url)
    badge = reader.locator("#button img")
    assert await badge.evaluate("(img) => img.complete && img.naturalWidth > 0")
    await reader.locator("#button a").click()
    await reader.wait_for_url(f"{root}/flattr?url=*")
    await check_accessibility(reader, "flattr")
    await reader.get_by_role("button", name="Flattr", exact=True).click()
    assert "You flattred" in await text_of(reader, "flattred")

    await reader.goto(f"{root}/dashboard")
    assert site.post_url in await text_of(reader, "flattr")
    await reader.get_by_role("button", name=f"Take back the flattr of {site.post_url}").click()
    await reader.wait_for_url(f"{root}/dashboard?done=taken-back")
    assert await reader.get_by_test_id("flattr").count() == 0
    await reader.goto(site.post_url)
    await reader.locator("#button a").click()
    await reader.get_by_role("button", name="Flattr", exact=True).click()
    await reader.goto(f"{root}/dashboard")
    assert await reader.get_by_test_id("flattr").count() == 1
    await check_accessibility(reader, "dashboard")

    # The creator signs up in another browser, gives too, claims the site by its file.
    creator_context = await chromium.new_context(bypass_csp=True)
    creator = await creator_context.new_page()
    await sign_up(creator, root, "carol")
    await creator.request.post(f"{root}/api/v1/admin/credits", headers=admin,
                               data={"handle": "carol", "amount": "10"})
    await creator.goto(f"{root}/dashboard")
    await creator.get_by_label("Budget a month (EUR)").fill("2")
    await creator.get_by_role("button", name="Save the budget").click()
    await creator.goto(f"{root}/flattr?url=https://elsewhere.example/essay")
    await creator.get_by_role("button", name="Flattr", exact=True).click()
    await creator.goto(f"{root}/claims")
    await creator.get_by_label("Host").fill("127.0.0.1")
    await creator.get_by_role("button", name="Claim").click()
    assert await text_of(creator, "claim-status") == "Not verified yet."
    await check_accessibility(creator, "claims")
    await creator.get_by_role("button", name="Verify the claim of 127.0.0.1").click()
    await creator.wait_for_url(f"{root}/claims?done=verified")
    assert await text_of(creator, "claim-status") == "Verified"
    await creator.goto(f"{root}/t/{site.post_url.replace('/', '%2F').replace(':', '%3A')}")
    assert await text_of(creator, "owner") == "carol"
    assert await text_of(creator, "count-month") == "1"
    await check_accessibility(creator, "thing")
    for path in ("/chats", "/tokens", "/account", "/statements", "/inbox"):
        await creator.goto(root + path)
        await check_accessibility(creator, path)

    # The month is settled (as `flattr settle` would, once it has ended).
    period = Period.current()
    settings = Settings(database_url=database_url, redis_url=None)
    await settle_period(engine, period, settings, now=period.ends_at + timedelta(minutes=5))

    await reader.goto(f"{root}/statements/{period}")
    assert await text_of(reader, "charged") == "€5.00"
    assert await text_of(reader, "fee") == "€0.50"
    assert await text_of(reader, "net") == "€4.50"
    shares = reader.get_by_test_id("share")
    assert await shares.count() == 1
    assert "paid to carol" in await shares.first.inner_text()
    assert "€4.50" in await shares.first.inner_text()
    chart = reader.get_by_test_id("where-chart")
    assert "paid to carol" in await chart.text_content()
    assert await reader.get_by_test_id("months-chart").count() == 1
    await check_accessibility(reader, "statement")
    await reader.screenshot(path=OUTPUT / "statement.png", full_page=True)

    await reader.goto(f"{root}/inbox")
    message = reader.get_by_test_id("message").first
    await message.get_by_role("link", name=f"Statement for {period}").click()
    await reader.wait_for_url(f"{root}/statements/{period}")

    await creator.goto(f"{root}/statements/{period}")
    assert await text_of(creator, "charged") == "€2.00"
    assert await text_of(creator, "received-shares") == "€4.50"
    assert "held: no active owner yet" in await creator.get_by_test_id("share").inner_text()
    await creator.screenshot(path=OUTPUT / "creator-statement.png", full_page=True)
    async with creator.expect_download() as downloading:
        await creator.get_by_role("link", name="Download as CSV").click()
    download = await downloading.value
    csv_text = Path(await download.path()).read_text()
    assert f"{period},share,https://elsewhere.example/essay,,held,1.80,EUR" in csv_text
    assert f"{period},received,,carol,shares,4.50,EUR" in csv_text

    await reader.goto(f"{root}/dashboard")
    assert await text_of(reader, "giving") == "€15.00"
    await reader.screenshot(path=OUTPUT / "dashboard.png", full_page=True)
    await creator.goto(f"{root}/dashboard")
    assert await text_of(creator, "revenue") == "€4.50"

    check_accessibility.assert_none()
    await reader_context.close()
    await creator_context.close()


async def test_another_site_can_use_neither_the_session_nor_the_api(gateway, chromium,
                                                                     engine):
    root = str(gateway.make_url("")).rstrip("/")
    context = await chromium.new_context()
    page = await context.new_page()
    await sign_up(page, root, "dora")
    await page.goto(f"http://127.0.0.1:{gateway.site.port}/attack.html")
    await page.locator("#steal button").click()
    await page.wait_for_load_state()
    assert "this form was sent from another site" in await page.content()
    # The JSON API answers no cookie: another origin cannot read it, and even this origin
    # gets 401 without a bearer token.
    await page.goto(f"http://127.0.0.1:{gateway.site.port}/attack.html")
    refused = await page.evaluate("""async (root) => {
        try { await fetch(root + "/api/v1/me", {credentials: "include"}); return "read"; }
        catch (error) { return "blocked"; }
    }""", root)
    assert refused == "blocked"
    await page.goto(f"{root}/dashboard")
    assert "You have no budget yet" in await page.content()
    same_origin = await page.evaluate("""async () =>
        (await fetch("/api/v1/me", {credentials: "include"})).status""")
    assert same_origin == 401
    await context.close()



async def test_a_member_adds_funds_by_card_and_gives_a_bank_account(card_gateway, chromium,
                                                                    engine):
    root = str(card_gateway.make_url("")).rstrip("/")
    OUTPUT.mkdir(parents=True, exist_ok=True)
    check_accessibility = AxeChecks()
    context = await chromium.new_context(bypass_csp=True, viewport={"width": 1100,
                                                                     "height": 900})
    page = await context.new_page()
    await sign_up(page, root, "payer")
    await check_accessibility(page, "dashboard with card funding")
    await page.get_by_label("Amount to add (EUR)").fill("3")
    await page.get_by_role("button", name="See the card fee").click()
    amount = page.get_by_label("Amount to add (EUR, 5.00 to 500.00)")
    assert await amount.get_attribute("aria-invalid") == "true"
    assert "between 5.00 and 500.00" in await amount.evaluate(
        "(input) => document.getElementById(input.getAttribute('aria-describedby')).textContent")
    await check_accessibility(page, "card amount refused")
    await amount.fill("10")
    await page.get_by_role("button", name="See the card fee").click()
    await page.wait_for_url(f"{root}/dashboard/funds/card?amount=10")
    assert [await text_of(page, f"quote-{n}") for n in ("amount", "fee", "total")] == [
        "€10.00", "€0.41", "€10.41"]
    await check_accessibility(page, "card quote")

    # Paid where the page's policy holds (no bypass): its form's answer leads to Stripe.
    strict = await chromium.new_context()
    await strict.add_cookies(await context.cookies())
    paying = await strict.new_page()
    await paying.route("https://checkout.stripe.test/**", lambda route: route.fulfill(
        content_type="text/html", body="<!doctype html><title>Stripe Checkout</title>"))
    await paying.goto(page.url)
    await paying.get_by_role("button", name="Pay €10.41 by card").click()
    await paying.wait_for_url("https://checkout.stripe.test/pay/cs_test_*")
    [(session_id, _, _)] = await checkouts(engine)
    assert paying.url.endswith(session_id)
    await strict.close()

    event = payload(session_paid(session_id, "pi_payer", 1041))
    hook = await page.request.post(f"{root}/webhooks/stripe", data=event,
                                   headers={"Stripe-Signature": sign(event),
                                            "Content-Type": "application/json"})
    assert hook.status == 200, await hook.text()
    await page.goto(f"{root}/dashboard?funding=paid&session_id={session_id}")
    assert "being confirmed" in await page.get_by_role("status").inner_text()
    assert await text_of(page, "giving") == "€10.00"
    assert "€10.00" in await text_of(page, "funding")

    # The bank account: a wrong IBAN is said beside it, a good one is shown masked.
    iban = page.get_by_label("IBAN", exact=True)
    await iban.fill("DE89370400440532013001")
    await page.get_by_label("Account holder's name").fill("Pay Er")
    await page.get_by_role("button", name="Save the bank account").click()
    iban = page.get_by_label("IBAN", exact=True)
    assert await iban.get_attribute("aria-invalid") == "true"
    assert "not a valid IBAN" in await page.get_by_role("alert").inner_text()
    assert await iban.input_value() == "DE89370400440532013001"
    await check_accessibility(page, "bank account refused")
    await iban.fill("DE89 3704 0044 0532 0130 00")
    await page.get_by_role("button", name="Save the bank account").click()
    await page.wait_for_url(f"{root}/dashboard?done=bank-account#bank-account-title")
    assert "DE89 •••• 3000" in await text_of(page, "bank-account")
    await check_accessibility(page, "bank account saved")
    await page.screenshot(path=OUTPUT / "dashboard-money.png", full_page=True)
    await page.get_by_role("button", name="Remove the bank account").click()
    await page.wait_for_url(f"{root}/dashboard?done=bank-account-removed#bank-account-title")
    assert await page.get_by_test_id("no-bank-account").count() == 1

    check_accessibility.assert_none()
    await context.close()
