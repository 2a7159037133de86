"""Signing up, in and out on the web pages: sessions, CSRF, the API's password rules and
limits, the bots' one-time sign-in links."""

import re

from sqlalchemy import select

from core import members
from core.schema import members as members_table
from support import require_redis


def cookie(browser, name: str):
    return {c.key: c for c in browser.client.session.cookie_jar}.get(name)


async def test_sign_up_lands_on_the_dashboard_and_sign_out_ends_the_session(browser):
    page = await browser.sign_up("ada")
    assert "ada" in page and "Monthly budget" in page
    session = cookie(browser, "flattr_session")
    assert session["httponly"] and session["samesite"] == "Lax" and not session["secure"]
    stolen = session.value
    await browser.submit("/dashboard", "/sign-out", {})
    response = await browser.client.get("/dashboard", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/sign-in?next=%2Fdashboard"
    replayed = await browser.client.get("/dashboard", allow_redirects=False,
                                        cookies={"flattr_session": stolen})
    assert replayed.status == 303, "a signed-out session must not work again"


async def test_a_form_without_its_token_or_from_another_site_changes_nothing(browser,
                                                                             engine):
    await browser.sign_up("bea")
    without = await browser.client.post("/dashboard/budget", data={"amount": "5"})
    assert without.status == 403 and "reload the page" in await without.text()
    token = await browser.csrf("/dashboard")
    wrong = await browser.client.post("/dashboard/budget",
                                      data={"amount": "5", "csrf": token[:-2] + "xx"})
    assert wrong.status == 403
    elsewhere = await browser.client.post(
        "/dashboard/budget", data={"amount": "5", "csrf": token},
        headers={"Origin": "http://evil.example"})
    assert elsewhere.status == 403 and "another site" in await elsewhere.text()
    async with engine.connect() as conn:
        budget = await conn.scalar(select(members_table.c.budget_micros)
                                   .where(members_table.c.handle == "bea"))
    assert budget is None
    _, page = await browser.submit("/dashboard", "/dashboard/budget", {"amount": "5"})
    assert "Your monthly budget is saved" in page and "€5.00" in page


async def test_sign_in_follows_the_api_rules_and_limits(new_browser):
    first = await new_browser(sign_in_failures_per_handle_and_address=2)
    await first.sign_up("cleo")
    other = await new_browser()
    _, page = await other.submit("/sign-in", "/sign-in",
                                 {"handle": "cleo", "password": "wrong password"}, status=401)
    assert "the handle or the password is wrong" in page
    await other.submit("/sign-in", "/sign-in", {"handle": "cleo", "password": "nope nope"},
                       status=401)
    limited, page = await other.submit("/sign-in", "/sign-in",
                                       {"handle": "cleo", "password": "a long password"},
                                       status=429)
    assert "too many failed sign-ins" in page and int(limited.headers["Retry-After"]) > 0
    short = await new_browser()
    _, page = await short.submit("/sign-up", "/sign-up", {"handle": "dan", "password": "short"},
                                 status=400)
    assert "8 to 1024 characters" in page and 'value="dan"' in page
    _, page = await short.submit("/sign-up", "/sign-up",
                                 {"handle": "cleo", "password": "a long password"}, status=409)
    assert "is taken" in page


async def test_sign_in_goes_back_where_it_was_asked_and_never_to_another_site(new_browser):
    owner = await new_browser()
    await owner.sign_up("eve")
    for asked, landed in (("/inbox", "/inbox"), ("//evil.example/x", "/dashboard"),
                          ("https://evil.example/", "/dashboard"), ("/\\evil", "/dashboard")):
        visitor = await new_browser()
        response, _ = await visitor.submit(
            "/sign-in", "/sign-in", {"handle": "eve", "password": "a long password",
                                     "next": asked})
        assert response.url.path == landed and response.url.host == "127.0.0.1", asked


async def test_a_chat_member_signs_in_once_with_the_bots_link_then_sets_a_password(
        new_browser, engine, token_for):
    bot_token = await token_for("botty", "bot")
    visitor = await new_browser()
    bot = {"Authorization": f"Bearer {bot_token}"}
    made = await visitor.client.post("/api/v1/bot/members", json={"identity": "telegram:42"},
                                     headers=bot)
    handle = (await made.json())["member"]["handle"]
    unlinked = await visitor.client.post("/api/v1/bot/sign-in-links",
                                         json={"identity": "telegram:43"}, headers=bot)
    assert unlinked.status == 403
    assert (await unlinked.json())["error"]["code"] == "identity_not_linked"
    answer = await visitor.client.post("/api/v1/bot/sign-in-links",
                                       json={"identity": "telegram:42"}, headers=bot)
    assert answer.status == 201, await answer.text()
    link = await answer.json()
    assert link["expires_at"].endswith("Z")
    path = "/" + link["url"].split("/", 3)[3]
    assert re.fullmatch(r"/sign-in/link/[A-Za-z0-9_-]{43}", path)

    preview = await new_browser()  # a chat's link preview fetches it: nothing is used up
    await preview.get(path)
    _, page = await visitor.submit(path, path, {})
    assert "Set a password" in page and f"Welcome, {handle}" in page
    again = await new_browser()
    _, page = await again.submit(path, path, {}, status=400)
    assert "unknown, used or expired" in page

    await visitor.submit("/account", "/account/password",
                         {"password": "chat member pw", "confirm": "chat member pw"})
    await visitor.submit("/account", "/account/email", {"email": "chat@example.com"})
    async with engine.connect() as conn:
        member = await members.member_by_handle(conn, handle)
    assert member.email == "chat@example.com"
    later = await new_browser()
    response, _ = await later.submit("/sign-in", "/sign-in",
                                     {"handle": handle, "password": "chat member pw"})
    assert response.url.path == "/dashboard"
    acting = await visitor.client.post("/api/v1/bot/sign-in-links", json={
        "identity": "telegram:42"}, headers={**bot, "Flattr-Identity": "telegram:42"})
    assert acting.status == 403


async def test_what_members_typed_is_shown_as_text(browser):
    marked = '<b>x</b>@example.com'
    await browser.sign_up("fay", email=marked)
    page = await browser.get("/account")
    assert "&lt;b&gt;x&lt;/b&gt;@example.com" in page and "<b>x</b>" not in page
    _, page = await browser.submit("/tokens", "/tokens", {
        "label": '<script>alert(1)</script>', "scope": "read"})
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>" not in page


async def test_sessions_and_limits_with_redis(new_browser):
    redis_url = require_redis()
    browser = await new_browser(redis_url=redis_url)
    await browser.sign_up("gil")
    assert "gil" in await browser.get("/dashboard")
