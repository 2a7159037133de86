"""The API as a member uses it, on SQLite and PostgreSQL."""

import asyncio

from aiohttp import web

from core.periods import Period


def serving(text: str, content_type: str = "text/plain"):
    async def handler(_request: web.Request) -> web.Response:
        return web.Response(text=text, content_type=content_type)

    return handler


async def test_sign_up_budget_flattr_take_back(client, sign_up, privileged):
    alice = await sign_up("alice")
    _, admin = await privileged("operator", "admin")
    await client.post("/api/v1/admin/credits", json={"handle": "alice", "amount": "10"},
                      headers={"Authorization": f"Bearer {admin}"})

    refused = await alice.call("PUT", "/me/budget", json={"amount": "1.5"}, status=422)
    assert refused["error"]["code"] == "budget_below_minimum"
    assert (await alice.call("PUT", "/me/budget", json={"amount": "4"}, status=200))[
        "budget"] == "4.00"

    made = await alice.call("POST", "/flattrs", json={"url": "https://blog.example/a?utm_x=1"},
                            status=201)
    assert made["created"] is True and made["currency"] == "EUR"
    assert made["flattr"]["thing"]["key"] == "https://blog.example/a"
    again = await alice.call("POST", "/flattrs", json={"url": "https://BLOG.example/a"},
                             status=200)
    assert again["flattr"]["id"] == made["flattr"]["id"] and again["created"] is False
    await alice.call("POST", "/flattrs", json={"thing": "telegram:-100/5"}, status=201)

    me = await alice.call("GET", "/me", status=200)
    assert me["balances"]["giving"] == "10.00" and me["budget"] == "4.00"
    assert me["flattr_count"] == 2 and me["estimated_share"] == "1.80"

    listed = await alice.call("GET", f"/flattrs?period={Period.current()}", status=200)
    assert [f["thing"] for f in listed["flattrs"]] == ["https://blog.example/a",
                                                        "telegram:-100/5"]
    seen = await alice.call("GET", "/things?url=https://blog.example/a", status=200)
    assert seen["flattred_by_me"] is True and seen["count_this_period"] == 1
    assert seen["owner"] is None

    await alice.call("DELETE", f"/flattrs/{made['flattr']['id']}", status=200)
    seen = await alice.call("GET", "/things?url=https://blog.example/a", status=200)
    assert seen["flattred_by_me"] is False and seen["count_total"] == 0
    anonymous = await client.get("/api/v1/things?url=https://blog.example/a")
    assert "flattred_by_me" not in await anonymous.json()


async def test_claim_proven_by_well_known_file_served_on_loopback(
    aiohttp_server, make_client, sign_up
):
    site = web.Application()
    site.router.add_get("/.well-known/flattr.txt", serving("carol\n"))
    server = await aiohttp_server(site)
    client = await make_client(claims_port=server.port)
    carol = await sign_up("carol", on=client)
    dave = await sign_up("dave", on=client)
    await dave.call("POST", "/flattrs", json={"url": "http://localhost/post"}, status=201)

    claim = (await carol.call("POST", "/claims", json={"host": "LocalHost"}, status=201))["claim"]
    assert claim["host"] == "localhost" and claim["verified"] is False
    assert claim["how_to_prove"]["file_content"] == "carol"
    refused = await dave.call("POST", f"/claims/{claim['id']}/verify", status=404)
    assert refused["error"]["code"] == "not_found"
    verified = await carol.call("POST", f"/claims/{claim['id']}/verify", status=200)
    assert verified["claim"]["verified"] is True
    seen = await dave.call("GET", "/things?url=http://localhost/post", status=200)
    assert seen["owner"] == "carol"
    own = await carol.call("POST", "/flattrs", json={"url": "http://localhost/x"}, status=403)
    assert own["error"]["code"] == "own_thing"


async def test_claim_proven_by_meta_tag_and_refused_without_proof(
    aiohttp_server, make_client, sign_up
):
    page = '<html><head><meta name="flattr:account" content="erin"></head></html>'
    site = web.Application()
    site.router.add_get("/blog/", serving(page, "text/html"))
    server = await aiohttp_server(site)
    client = await make_client(claims_port=server.port)
    erin = await sign_up("erin", on=client)
    fred = await sign_up("fred", on=client)
    claim = (await erin.call("POST", "/claims", json={"host": "localhost",
                                                      "path_prefix": "/blog/"}))["claim"]
    assert (await erin.call("POST", f"/claims/{claim['id']}/verify", status=200))["claim"][
        "verified"]
    other = (await fred.call("POST", "/claims", json={"host": "localhost"}))["claim"]
    refused = await fred.call("POST", f"/claims/{other['id']}/verify", status=422)
    assert refused["error"]["code"] == "claim_not_proven"


async def test_private_addresses_are_refused_unless_allowed(make_client, sign_up):
    client = await make_client(claims_allow_private=False, claims_port=9)
    gus = await sign_up("gus", on=client)
    claim = (await gus.call("POST", "/claims", json={"host": "localhost"}))["claim"]
    refused = await gus.call("POST", f"/claims/{claim['id']}/verify", status=422)
    assert "not a public address" in refused["error"]["message"]


async def test_link_code_redeemed_by_the_bot_then_the_bot_acts_for_the_member(
    client, sign_up, privileged
):
    hana = await sign_up("hana")
    _, bot_token = await privileged("botty", "bot")
    bot = {"Authorization": f"Bearer {bot_token}"}
    code = (await hana.call("POST", "/link-codes", status=201))["code"]

    acting = {**bot, "Flattr-Identity": "telegram:555"}
    unlinked = await client.post("/api/v1/flattrs", json={"url": "https://x.example/"},
                                 headers=acting)
    assert unlinked.status == 403
    assert (await unlinked.json())["error"]["code"] == "identity_not_linked"

    linked = await client.post("/api/v1/bot/link", headers=bot,
                               json={"identity": "telegram:555", "code": code.lower()})
    assert linked.status == 200, await linked.text()
    reused = await client.post("/api/v1/bot/link", headers=bot,
                               json={"identity": "telegram:556", "code": code})
    assert (await reused.json())["error"]["code"] == "invalid_code"

    made = await client.post("/api/v1/flattrs", headers=acting,
                             json={"thing": "telegram:-1001/9", "author": "telegram:777"})
    assert made.status == 201 and (await made.json())["flattr"]["source"] == "telegram"
    assert [i["identity"] for i in (await hana.call("GET", "/identities"))["identities"]] == [
        "telegram:555"]
    # The chat user may set their budget through the bot, not move money elsewhere.
    budget = await client.put("/api/v1/me/budget", headers=acting, json={"amount": "3"})
    assert budget.status == 200 and (await budget.json())["budget"] == "3.00"
    payout = await client.post("/api/v1/payouts", headers=acting, json={})
    assert (await payout.json())["error"]["code"] == "insufficient_scope"

    created = await client.post("/api/v1/bot/members", headers=bot,
                                json={"identity": "discord:4242"})
    assert created.status == 201 and (await created.json())["member"]["handle"] == "di4242"
    again = await client.post("/api/v1/bot/members", headers=bot,
                              json={"identity": "discord:4242"})
    assert again.status == 200


async def test_admin_settles_a_month_and_the_statement_shows_it(client, sign_up, privileged,
                                                                 engine):
    from core import flattrs as core_flattrs

    ida = await sign_up("ida")
    _, admin_token = await privileged("operator", "admin")
    admin = {"Authorization": f"Bearer {admin_token}"}
    await client.post("/api/v1/admin/credits", json={"handle": "ida", "amount": "10"},
                      headers=admin)
    await ida.call("PUT", "/me/budget", json={"amount": "5"}, status=200)
    async with engine.begin() as conn:
        await core_flattrs.flattr(conn, ida.id, "https://z.example/", period=Period(2026, 1))
    settled = await client.post("/api/v1/admin/settlements", json={"period": "2026-01"},
                                headers=admin)
    assert settled.status == 200, await settled.text()
    summary = await settled.json()
    assert summary["charged"] == "5.00" and summary["held"] == "4.50"
    statement = await ida.call("GET", "/statements/2026-01", status=200)
    assert statement["charged"] == "5.00" and statement["fee"] == "0.50"
    assert statement["shares"][0]["state"] == "held"
    bad = await ida.call("GET", "/statements/2026-13", status=400)
    assert bad["error"]["code"] == "invalid_period"


async def test_hundred_identical_concurrent_flattrs_make_exactly_one(client, sign_up):
    jo = await sign_up("jo")
    responses = await asyncio.gather(*(
        client.post("/api/v1/flattrs", json={"url": "https://same.example/"}, headers=jo.auth)
        for _ in range(100)
    ))
    statuses = sorted(r.status for r in responses)
    assert statuses == [200] * 99 + [201]
    ids = {(await r.json())["flattr"]["id"] for r in responses}
    assert len(ids) == 1
    listed = await jo.call("GET", "/flattrs")
    assert len(listed["flattrs"]) == 1


async def test_health_and_metrics(client):
    health = await client.get("/healthz")
    assert health.status == 200 and (await health.json())["database"] == "ok"
    await client.get("/api/v1/things?url=https://a.example/")
    metrics = await (await client.get("/metrics")).text()
    assert 'flattr_http_requests_total{method="GET",route="/api/v1/things",status="200"} 1' in (
        metrics)


async def test_the_extension_marks_its_automatic_flattrs(sign_up):
    ines = await sign_up("ines")
    made = await ines.call("POST", "/flattrs", status=201,
                           json={"url": "https://blog.example/read", "source": "automatic"})
    assert made["flattr"]["source"] == "automatic"
    listed = await ines.call("GET", "/flattrs", status=200)
    assert [f["source"] for f in listed["flattrs"]] == ["automatic"]
    refused = await ines.call("POST", "/flattrs", status=400,
                              json={"url": "https://blog.example/b", "source": "robot"})
    assert refused["error"]["code"] == "invalid_request"
