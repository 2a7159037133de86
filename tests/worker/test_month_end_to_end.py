"""A month end to end, as its members and operator live it, on each backend: members sign up,
fund, budget and flattr through the API; the clock passes the month's end; `flattr worker
--once` settles it; each member gets exactly one summary whose numbers are their statement's,
in the web inbox, by e-mail (a real SMTP server on loopback) and to their linked chat."""

import asyncio
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from core import members, tokens
from core.money import format_money, parse_amount
from core.periods import Period
from core.schema import outbox
from core.settings import Settings
from gateway.app import create_app
from gateway.settings import GatewaySettings
from smtp_server import smtp_server
from world import World

FLATTR = str(Path(sys.executable).parent / "flattr")
PASSWORD = "a long password"


@pytest.fixture
def mailbox():
    with smtp_server() as (box, url):
        yield box, url


class Api:
    def __init__(self, client: TestClient) -> None:
        self.client = client

    async def call(self, method: str, path: str, token: str | None = None, status: int = 200,
                   **kwargs) -> dict:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await self.client.request(method, "/api/v1" + path, headers=headers,
                                              **kwargs)
        body = await response.json()
        assert response.status == status, body
        return body

    async def sign_up(self, handle: str) -> str:
        await self.call("POST", "/members", status=201, json={
            "handle": handle, "email": f"{handle}@example.com", "password": PASSWORD})
        issued = await self.call("POST", "/tokens", status=201, json={
            "handle": handle, "password": PASSWORD, "scopes": ["read", "flattr", "account"]})
        return issued["token"]


async def operator_token(engine, handle: str, scopes: str) -> str:
    async with engine.begin() as conn:
        made = await members.create_member(conn, handle, is_admin="admin" in scopes)
        issued = await tokens.issue_token(conn, made.id, tokens.parse_scopes(scopes),
                                          may_grant_privileged=True)
    return issued.token


def worker_once(database_url: str, smtp_url: str, now: str) -> dict:
    done = subprocess.run(
        [FLATTR, "--json", "worker", "--once", "--now", now], capture_output=True, text=True,
        timeout=300, check=False, stdin=subprocess.DEVNULL,
        env={**os.environ, "FLATTR_DATABASE_URL": database_url, "FLATTR_SMTP_URL": smtp_url,
             "FLATTR_PUBLIC_URL": "https://flattr.test"},
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def euros(text: str) -> str:
    return format_money(parse_amount(text), "EUR")


async def test_a_month_from_clicks_to_summaries(aiohttp_client, database_url, engine, mailbox):
    box, smtp_url = mailbox
    settings = Settings(database_url=database_url, smtp_url=smtp_url,
                        public_url="https://flattr.test")
    client = await aiohttp_client(create_app(settings, GatewaySettings(demo=False)))
    api = Api(client)
    admin = await operator_token(engine, "operator", "admin,read")
    bot = await operator_token(engine, "telegram-bot", "bot")
    period = Period.current()

    ann, bob, cid = [await api.sign_up(h) for h in ("ann", "bob", "cid")]
    for handle, amount in (("ann", "20"), ("bob", "10")):
        await api.call("POST", "/admin/credits", admin, status=201,
                       json={"handle": handle, "amount": amount})
    await api.call("PUT", "/me/budget", ann, json={"amount": "5"})
    await api.call("PUT", "/me/budget", bob, json={"amount": "3"})
    world = World(engine, settings)
    world.ids = {h: (await api.call("GET", "/me", t))["member"]["id"]
                 for h, t in (("ann", ann), ("bob", bob), ("cid", cid))}
    await world.claim("bob", "bob.example")
    await world.claim("cid", "cid.example")  # cid gives nothing: what is his is held
    for token, url in ((ann, "https://bob.example/a"), (ann, "https://cid.example/a"),
                       (ann, "https://nobody.example/"), (bob, "https://cid.example/b")):
        await api.call("POST", "/flattrs", token, status=201, json={"url": url})
    await api.call("PUT", "/me/notifications", ann, json={"email": True})
    code = (await api.call("POST", "/link-codes", bob, status=201))["code"]
    await api.call("POST", "/bot/link", bot, json={"code": code, "identity": "telegram:4242"})

    at = (period.ends_at + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    done = await asyncio.to_thread(worker_once, database_url, smtp_url, at)
    assert [d["work"] for d in done["done"]][:1] == ["settle"], done
    assert [d["work"] for d in done["done"]].count("settle") == 1, done

    async with engine.connect() as conn:
        rows = (await conn.execute(
            select(outbox.c.member_id, outbox.c.text, outbox.c.data)
            .where(outbox.c.kind == "summary", outbox.c.period == str(period)))).all()
    by_member = {row.member_id: row for row in rows}
    assert len(rows) == len(by_member) == 3  # the operator and the bot did nothing
    assert set(by_member) == {world.ids[h] for h in ("ann", "bob", "cid")}

    for handle, token in (("ann", ann), ("bob", bob)):
        statement = await api.call("GET", f"/statements/{period}", token)
        text = by_member[world.ids[handle]].text
        data = json.loads(by_member[world.ids[handle]].data)["giving"]
        assert statement["status"] == data["status"] == "funded"
        assert data["charged_micros"] == parse_amount(statement["charged"])
        assert data["fee_micros"] == parse_amount(statement["fee"])
        assert data["flattr_count"] == statement["flattr_count"]
        assert (f"You were charged {euros(statement['charged'])}. After the fee of "
                f"{euros(statement['fee'])}, {euros(statement['net'])} went to your") in text
        assert text.endswith(f"https://flattr.test/statements/{period}")
    ann_shares = (await api.call("GET", f"/statements/{period}", ann))["shares"]
    held = sum(parse_amount(s["amount"]) for s in ann_shares if s["state"] == "held")
    assert held > 0 and f"{format_money(held, 'EUR')} of it is held for creators" in \
        by_member[world.ids["ann"]].text

    bob_me = await api.call("GET", "/me", bob)
    bob_received = await api.call("GET", f"/statements/{period}", bob)
    assert (f"You received {euros(bob_received['received'])} from 1 flattr by 1 member."
            in by_member[world.ids["bob"]].text)
    assert f"Your revenue balance is {euros(bob_me['balances']['revenue'])}" in \
        by_member[world.ids["bob"]].text
    cid_me = await api.call("GET", "/me", cid)
    assert (f"{euros(cid_me['balances']['held_for_you'])} from 2 flattrs of your things is "
            "held for you because you were not an active giver") in by_member[world.ids["cid"]].text

    inbox = await api.call("GET", "/messages", ann)
    assert [(m["kind"], m["period"], m["read"]) for m in inbox["messages"]] == [
        ("summary", str(period), False)]
    assert inbox["messages"][0]["text"] == by_member[world.ids["ann"]].text

    [mail] = box.received
    assert mail["To"] == "ann@example.com"
    assert mail["Subject"].startswith("Your Flattr month")
    assert box.bodies(mail)[0].strip() == by_member[world.ids["ann"]].text.strip()

    leased = await api.call("POST", "/bot/outbox/lease", bot,
                            json={"platform": "telegram", "max": 10})
    assert [(m["identity"], m["text"]) for m in leased["messages"]] == [
        ("telegram:4242", by_member[world.ids["bob"]].text)]
    await api.call("POST", f"/bot/outbox/{leased['messages'][0]['id']}/ack", bot)

    # The worker again, later: nothing twice.
    later = (period.ends_at + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    await asyncio.to_thread(worker_once, database_url, smtp_url, later)
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(outbox)) == 3
    assert len(box.received) == 1
    assert (await api.call("POST", "/bot/outbox/lease", bot,
                           json={"platform": "telegram"}))["messages"] == []
