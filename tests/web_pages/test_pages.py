"""Each page's forms against a real gateway on both backends: what they change, what they
refuse (a clear 4xx, nothing changed), the badge and its cache, the visitor's button flow."""

import re
from datetime import timedelta
from urllib.parse import unquote

from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import func, select

from core import flattrs as core_flattrs
from core import link_codes, members
from core.periods import Period
from core.schema import flattrs, fundings, payouts
from core.settings import Settings
from core.settlement import settle_period
from core.statements import balances_of
from gateway.pages.settings import PagesSettings


async def member_id(engine, handle: str) -> int:
    async with engine.connect() as conn:
        return (await members.member_by_handle(conn, handle)).id


async def count(engine, table, **where) -> int:
    async with engine.connect() as conn:
        return await conn.scalar(select(func.count()).select_from(table).where(
            *(table.c[name] == value for name, value in where.items())))


async def test_funds_budget_transfer_and_payout_forms_move_money_once(browser, engine):
    await browser.sign_up("ann")
    ann = await member_id(engine, "ann")
    page = await browser.get("/dashboard")
    key = re.search(r'name="key" value="([^"]+)"', page)[1]
    csrf = await browser.csrf("/dashboard")
    for _ in range(2):  # the same form sent twice
        sent = await browser.client.post("/dashboard/funds",
                                         data={"csrf": csrf, "key": key, "amount": "12.5"})
        assert sent.status == 200 and "The funds were added" in await sent.text()
    assert await count(engine, fundings, member_id=ann) == 1
    _, page = await browser.submit("/dashboard", "/dashboard/funds",
                                   {"key": "k" * 20, "amount": "101"}, status=400)
    assert "add at most 100" in page
    _, page = await browser.submit("/dashboard", "/dashboard/budget", {"amount": "1"},
                                   status=422)
    assert "at least 2.00 EUR" in page
    _, page = await browser.submit("/dashboard", "/dashboard/budget", {"amount": "abc"},
                                   status=400)
    _, page = await browser.submit("/dashboard", "/dashboard/transfer",
                                   {"key": "t" * 20, "amount": "1"}, status=422)
    _, page = await browser.submit("/dashboard", "/dashboard/payout",
                                   {"key": "p" * 20, "amount": ""}, status=422)
    assert await count(engine, payouts, member_id=ann) == 0
    async with engine.connect() as conn:
        assert (await balances_of(conn, ann))["giving"] == 12_500_000


async def test_without_sandbox_funding_the_dashboard_says_who_adds_funds(new_browser, engine):
    browser = await new_browser(pages=PagesSettings(sandbox_funding=False))
    await browser.sign_up("bob")
    page = await browser.get("/dashboard")
    assert 'data-testid="no-funding"' in page and 'action="/dashboard/funds"' not in page
    _, page = await browser.submit("/dashboard", "/dashboard/funds",
                                   {"key": "k" * 20, "amount": "5"}, status=409)
    assert "ask an admin" in page
    assert await count(engine, fundings) == 0


async def test_the_button_sends_a_visitor_to_sign_in_and_back_then_one_click_flattrs(
        new_browser, engine):
    visitor = await new_browser()
    url = "https://blog.example/post?utm_source=x"
    response = await visitor.client.get("/flattr", params={"url": url}, allow_redirects=False)
    assert response.status == 303
    location = response.headers["Location"]
    assert location.startswith("/sign-in?next=%2Fflattr%3Furl%3Dhttps%3A%2F%2Fblog.example")
    assert unquote(location.removeprefix("/sign-in?next=")) == str(response.url.relative())
    response, page = await visitor.submit(
        "/sign-up?next=%2Fflattr%3Furl%3Dhttps%3A%2F%2Fblog.example%2Fpost", "/sign-up",
        {"handle": "cat", "password": "a long password",
         "next": "/flattr?url=https://blog.example/post"})
    assert response.url.path == "/flattr" and "Flattr this?" in page
    _, page = await visitor.submit(str(response.url.relative()), "/flattr",
                                   {"thing": "https://blog.example/post"})
    assert 'data-testid="flattred"' in page
    _, page = await visitor.submit("/flattr?url=https://blog.example/post", "/flattr",
                                   {"thing": "https://blog.example/post"})
    assert await count(engine, flattrs) == 1
    page = await visitor.get("/flattr?url=https://blog.example/post")
    assert 'data-testid="already"' in page
    await visitor.get("/flattr", status=400)
    _, page = await visitor.submit("/flattr?url=https://blog.example/post", "/flattr",
                                   {"thing": "javascript:alert(1)"}, status=400)
    without = await visitor.client.post("/flattr", data={"thing": "https://blog.example/x"})
    assert without.status == 403
    assert await count(engine, flattrs) == 1


async def test_the_badge_counts_caches_and_refuses_bad_input(browser, engine):
    await browser.sign_up("dee")
    dee = await member_id(engine, "dee")
    badge = await browser.client.get("/badge.svg", params={"url": "https://news.example/a"})
    body = await badge.text()
    assert badge.status == 200 and badge.content_type == "image/svg+xml"
    assert badge.headers["Cache-Control"] == "public, max-age=60"
    assert "script" not in body and "default-src 'none'" in badge.headers[
        "Content-Security-Policy"]
    assert ">0</text>" in body
    async with engine.begin() as conn:
        await core_flattrs.flattr(conn, dee, "https://news.example/a")
    cached = await (await browser.client.get("/badge.svg?url=https://news.example/a")).text()
    assert ">0</text>" in cached, "a count is kept for a minute"
    fresh = await (await browser.client.get("/badge.svg?url=https://news.example/a#x")).text()
    assert ">0</text>" in fresh, "the same page under another spelling is the same count"
    bad = await browser.client.get("/badge.svg", params={"url": "ftp://x"})
    assert bad.status == 400 and bad.content_type == "image/svg+xml"
    assert (await browser.client.get("/badge.svg")).status == 400


async def test_the_badge_without_a_cache_shows_each_new_flattr(new_browser, engine):
    browser = await new_browser(pages=PagesSettings(badge_cache_seconds=0))
    await browser.sign_up("eli")
    eli = await member_id(engine, "eli")
    async with engine.begin() as conn:
        await core_flattrs.flattr(conn, eli, "https://news.example/b")
    body = await (await browser.client.get("/badge.svg?url=https://news.example/b")).text()
    assert ">1</text>" in body


async def test_claims_tokens_and_chats_pages(new_browser, engine, aiohttp_server):
    async def named(_request: web.Request) -> web.Response:
        return web.Response(text="fern\n")

    proof = web.Application()
    proof.router.add_get("/.well-known/flattr.txt", named)
    site = await aiohttp_server(proof, host="127.0.0.1")
    browser = await new_browser(claims_port=site.port)
    await browser.sign_up("fern")
    _, page = await browser.submit("/claims", "/claims", {"host": "not a host"}, status=400)
    _, page = await browser.submit("/claims", "/claims", {"host": "127.0.0.1"})
    assert "Not verified yet." in page and "/.well-known/flattr.txt" in page
    claim_id = re.search(r'action="/claims/(\d+)/verify"', page)[1]
    _, page = await browser.submit("/claims", f"/claims/{claim_id}/verify", {})
    assert ">Verified</strong>" in page
    page = await browser.get("/claims?page=https://127.0.0.1/a%20post")
    assert "badge.svg?url=https%3A%2F%2F127.0.0.1%2Fa%2520post" in page
    assert "&lt;meta name=&#34;flattr:account&#34; content=&#34;fern&#34;&gt;" in page

    _, page = await browser.submit("/tokens", "/tokens", {"label": "cli", "scope": "read"})
    token = re.search(r'data-testid="new-token">([^<]+)<', page)[1]
    me = await browser.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status == 200
    _, page = await browser.submit("/tokens", "/tokens", {"scope": "admin"}, status=400)
    token_id = re.search(r'action="/tokens/(\d+)/revoke"', page)[1]
    await browser.submit("/tokens", f"/tokens/{token_id}/revoke", {})
    me = await browser.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status == 401

    _, page = await browser.submit("/chats", "/chats/link-code", {})
    code = re.search(r"<code>/link ([A-Z0-9-]{9})</code>", page)[1]
    async with engine.begin() as conn:
        await link_codes.redeem_link_code(conn, code, "discord:77")
    page = await browser.get("/chats")
    assert "discord:77" in page
    identity_id = re.search(r'action="/chats/(\d+)/unlink"', page)[1]
    _, page = await browser.submit("/chats", f"/chats/{identity_id}/unlink", {})
    assert "discord:77" not in page
    await browser.submit("/chats", f"/chats/{identity_id}/unlink", {}, status=404)


async def test_statement_csv_inbox_and_thing_pages_after_a_settlement(browser, engine,
                                                                      database_url):
    await browser.sign_up("gus")
    gus = await member_id(engine, "gus")
    await browser.submit("/dashboard", "/dashboard/funds", {"key": "f" * 20, "amount": "10"})
    await browser.submit("/dashboard", "/dashboard/budget", {"amount": "4"})
    odd = "https://x.example/=cmd?q=<b>"
    async with engine.begin() as conn:
        await core_flattrs.flattr(conn, gus, odd)
    period = Period.current()
    await settle_period(engine, period, Settings(database_url=database_url),
                        now=period.ends_at + timedelta(minutes=5))
    page = await browser.get(f"/statements/{period}")
    assert "€4.00" in page and "€0.40" in page and "held: no active owner yet" in page
    assert "<b>" not in page.split("<main", 1)[1]
    csv = await browser.client.get(f"/statements/{period}.csv")
    assert csv.headers["Content-Disposition"] == f'attachment; filename="flattr-{period}.csv"'
    text = await csv.text()
    assert text.splitlines()[0] == "period,line,thing,to,state,amount,currency"
    assert f"{period},charge,,,funded,4.00,EUR" in text
    assert f"{period},share,https://x.example/=cmd?q=%3Cb%3E,,held,3.60,EUR" in text
    await browser.get("/statements/2026-13", status=400)
    await browser.get("/statements/nonsense", status=400)
    page = await browser.get("/inbox")
    assert 'data-testid="message"' in page and f'href="/statements/{period}"' in page
    await browser.submit("/inbox", "/inbox/read", {})
    assert "0 unread" in await browser.get("/inbox")
    anonymous = await browser.client.get("/t/" + odd.replace("/", "%2F").replace(":", "%3A")
                                         .replace("?", "%3F").replace("=", "%3D"))
    page = await anonymous.text()
    assert anonymous.status == 200 and 'data-testid="count-total">1<' in page
    assert "<b>" not in page.split("<main", 1)[1]


async def test_pages_need_a_session_and_send_their_security_headers(browser):
    for path in ("/dashboard", "/claims", "/chats", "/tokens", "/statements", "/inbox",
                 "/account", "/statements/2026-01"):
        response = await browser.client.get(path, allow_redirects=False)
        assert response.status == 303 and response.headers["Location"].startswith("/sign-in")
    home = await browser.client.get("/")
    assert home.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in home.headers["Content-Security-Policy"]
    csrf = next(c for c in browser.client.session.cookie_jar if c.key == "flattr_csrf")
    assert csrf["httponly"] and csrf["samesite"] == "Lax"
    css = await browser.client.get("/static/flattr.css")
    assert css.status == 200


async def test_cookies_are_secure_behind_https(make_app, aiohttp_client):
    app = make_app(public_url="https://flattr.example")
    client = await aiohttp_client(TestServer(app, host="127.0.0.1"))
    response = await client.get("/sign-in")
    assert "Secure" in response.headers["Set-Cookie"]
