"""Bad input, scopes, idempotency keys, limits and CORS: 4xx answers that change nothing."""

import asyncio

import pytest
from raw_http import exchange

from gateway.errors import domain_codes_without_status
from support import require_redis, wait_until


def test_every_core_error_code_has_an_http_status():
    assert domain_codes_without_status() == set()


async def test_a_backslash_and_u0000_spelled_out_is_no_nul(client, sign_up):
    kim = await sign_up("kim")
    answer = await kim.call("POST", "/flattrs", status=201,
                            json={"url": "https://a.example/?q=\\u0000"})
    # In the query: before it a backslash is a slash, as browsers read http(s) URLs.
    assert answer["flattr"]["thing"]["url"] == "https://a.example/?q=%5Cu0000"


@pytest.mark.parametrize(
    ("method", "path", "body", "code"),
    [
        ("POST", "/flattrs", b"{not json", "invalid_json"),
        ("POST", "/flattrs", b"[1, 2]", "invalid_request"),
        ("POST", "/flattrs", {"url": 5}, "invalid_request"),
        ("POST", "/flattrs", {"url": "https://a.example/", "extra": 1}, "invalid_request"),
        ("POST", "/flattrs", {}, "invalid_request"),
        ("POST", "/flattrs", {"url": "https://a.example/", "thing": "telegram:1/2"},
         "invalid_request"),
        ("POST", "/flattrs", {"url": "chrome://settings"}, "invalid_url"),
        ("POST", "/flattrs", {"url": "javascript:alert(1)"}, "invalid_url"),
        ("POST", "/flattrs", {"url": "https://a.example/" + "x" * 2100}, "invalid_request"),
        ("POST", "/flattrs", {"thing": "nothing"}, "invalid_thing"),
        ("POST", "/flattrs", {"url": "https://a.example/\x00"}, "invalid_request"),
        ("POST", "/flattrs", b'{"url": "https://a.example/", "\\u0000": 1}',
         "invalid_request"),
        ("POST", "/claims", {"host": "a\x00.example"}, "invalid_request"),
        ("PUT", "/me/budget", {"amount": "2.0000001"}, "invalid_amount"),
        ("PUT", "/me/budget", {"amount": 5}, "invalid_request"),
        ("PUT", "/me/budget", {"amount": "1e3"}, "invalid_amount"),
        ("POST", "/transfers", {"amount": "-1"}, "invalid_amount"),
        ("POST", "/transfers", {"amount": "1"}, "insufficient_funds"),
        ("POST", "/payouts", {}, "below_payout_threshold"),
        ("GET", "/flattrs?period=2026-13", None, "invalid_period"),
        ("GET", "/flattrs?period=soon", None, "invalid_request"),
        ("GET", "/statements/1999-01", None, "invalid_period"),
        ("DELETE", "/flattrs/abc", None, "not_found"),
        ("DELETE", "/flattrs/999", None, "not_found"),
        ("POST", "/claims", {"host": "http://x.example/"}, "invalid_host"),
        ("POST", "/subscriptions", {"url": "https://a.example/", "months": 0},
         "invalid_request"),
        ("GET", "/nowhere", None, "not_found"),
    ],
)
async def test_bad_input_gets_a_clear_4xx_and_changes_nothing(
    client, sign_up, method, path, body, code
):
    kim = await sign_up("kim")
    before = await kim.call("GET", "/me")
    options = {"data": body} if isinstance(body, bytes) else {"json": body}
    response = await client.request(method, "/api/v1" + path, headers=kim.auth,
                                    **(options if body is not None else {}))
    answer = await response.json()
    assert 400 <= response.status < 500, answer
    assert answer["error"]["code"] == code
    assert isinstance(answer["error"]["message"], str) and answer["error"]["message"]
    assert await kim.call("GET", "/me") == before


async def test_idempotency_key_replays_the_first_answer_and_refuses_another_body(
    client, sign_up
):
    lou = await sign_up("lou")
    key = {"Idempotency-Key": "click-1"}
    first = await lou.call("POST", "/flattrs", json={"url": "https://k.example/"}, headers=key,
                           status=201)
    replay = await client.post("/api/v1/flattrs", json={"url": "https://k.example/"},
                               headers={**lou.auth, **key})
    assert replay.status == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert await replay.json() == first
    other = await lou.call("POST", "/flattrs", json={"url": "https://other.example/"},
                           headers=key, status=409)
    assert other["error"]["code"] == "idempotency_conflict"
    assert len((await lou.call("GET", "/flattrs"))["flattrs"]) == 1


async def test_scopes_are_enforced(client, sign_up, privileged):
    reader = await sign_up("reader", scopes=("read",))
    refused = await reader.call("POST", "/flattrs", json={"url": "https://a.example/"},
                                status=403)
    assert refused["error"]["code"] == "insufficient_scope"
    asked = await client.post("/api/v1/tokens", json={
        "handle": "reader", "password": "a long password", "scopes": ["admin"]})
    assert asked.status == 403

    _, bot_token = await privileged("botty", "bot,read")
    admin_call = await client.post("/api/v1/admin/credits", json={"handle": "reader",
                                                                  "amount": "5"},
                                   headers={"Authorization": f"Bearer {bot_token}"})
    assert admin_call.status == 403
    anonymous = await client.get("/api/v1/me")
    assert anonymous.status == 401 and anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = await client.post("/api/v1/tokens", json={
        "handle": "reader", "password": "not the password"})
    assert (await wrong.json())["error"]["code"] == "invalid_credentials"


async def test_a_revoked_token_is_refused_at_once(client, sign_up):
    mia = await sign_up("mia")
    tokens = (await mia.call("GET", "/tokens", status=200))["tokens"]
    assert len(tokens) == 1
    await mia.call("GET", "/me", status=200)  # now cached
    await mia.call("DELETE", f"/tokens/{tokens[0]['id']}", status=200)
    refused = await mia.call("GET", "/me", status=401)
    assert refused["error"]["code"] == "unauthorized"


async def test_rate_limit_answers_429_with_retry_after(make_client, sign_up):
    client = await make_client(rate_limit_per_minute=5)
    ned = await sign_up("ned", on=client)
    statuses = []
    for _ in range(7):
        response = await client.get("/api/v1/me", headers=ned.auth)
        statuses.append(response.status)
    assert statuses[:5] == [200] * 5 and statuses[5:] == [429, 429]
    assert int(response.headers["Retry-After"]) >= 1
    assert response.headers["X-RateLimit-Remaining"] == "0"
    assert (await response.json())["error"]["code"] == "rate_limited"


async def test_cors_lets_the_extension_call_with_a_bearer_token_only(client):
    origin = "chrome-extension://abcdefghijklmnopabcdefghijklmnop"
    preflight = await client.options("/api/v1/flattrs", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type"})
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == origin
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Credentials" not in preflight.headers
    foreign = await client.options("/api/v1/flattrs", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in foreign.headers


async def test_a_revocation_reaches_every_gateway_process_through_redis(
    make_client, sign_up
):
    url = require_redis()
    first = await make_client(redis_url=url)
    second = await make_client(redis_url=url)
    olga = await sign_up("olga", on=first)
    token_id = (await olga.call("GET", "/tokens"))["tokens"][0]["id"]
    seen = await second.get("/api/v1/me", headers=olga.auth)
    assert seen.status == 200  # the second process now has the token cached
    await asyncio.sleep(0.2)  # let the second process subscribe
    await olga.call("DELETE", f"/tokens/{token_id}", status=200)

    async def refused() -> bool:
        return (await second.get("/api/v1/me", headers=olga.auth)).status == 401

    assert await wait_until(refused, seconds=2)


async def _second_token(engine, member_id: int, scopes: str) -> dict[str, str]:
    from core import tokens

    async with engine.begin() as conn:
        issued = await tokens.issue_token(conn, member_id, tokens.parse_scopes(scopes),
                                          may_grant_privileged=True)
    return {"Authorization": f"Bearer {issued.token}"}


async def test_an_idempotency_key_belongs_to_the_member_not_to_the_token(
    client, sign_up, privileged, engine
):
    kim = await sign_up("kim")
    boss_id, first_token = await privileged("boss", "admin,read")
    first = {"Authorization": f"Bearer {first_token}", "Idempotency-Key": "credit-kim-1"}
    second = {**await _second_token(engine, boss_id, "admin,read"),
              "Idempotency-Key": "credit-kim-1"}
    credit = {"handle": "kim", "amount": "5"}
    paid = await client.post("/api/v1/admin/credits", json=credit, headers=first)
    assert paid.status == 201, await paid.text()
    retried = await client.post("/api/v1/admin/credits", json=credit, headers=second)
    assert retried.status == 201 and retried.headers["Idempotent-Replayed"] == "true"
    assert await retried.json() == await paid.json()
    assert (await kim.call("GET", "/me"))["balances"]["giving"] == "5.00"


async def test_a_bot_acting_for_a_member_shares_the_member_s_idempotency_keys(
    client, sign_up, privileged, engine
):
    from core import members

    lia = await sign_up("lia")
    async with engine.begin() as conn:
        await members.link_identity(conn, lia.id, "telegram:77")
    key = {"Idempotency-Key": "click-77"}
    first = await lia.call("POST", "/flattrs", json={"thing": "telegram:-100/5"}, headers=key,
                           status=201)
    for bot in ("bot-one", "bot-two"):
        _, token = await privileged(bot, "bot")
        again = await client.post("/api/v1/flattrs", json={"thing": "telegram:-100/5"}, headers={
            "Authorization": f"Bearer {token}", "Flattr-Identity": "telegram:77", **key})
        assert again.status == 201 and again.headers["Idempotent-Replayed"] == "true"
        assert await again.json() == first


async def test_invalid_tokens_count_against_the_address_before_any_lookup(make_client,
                                                                          limits_store):
    client = await make_client(redis_url=limits_store, rate_limit_per_minute_per_address=100)
    statuses, limited = [], []
    for _ in range(1000):
        response = await client.get("/api/v1/me", headers={"Authorization": "Bearer flattr_x"})
        statuses.append(response.status)
        if response.status == 429 and not limited:
            limited.append((response.headers["Retry-After"], await response.json()))
    assert statuses[:100] == [401] * 100
    # Fixed one-minute windows: the run may cross into a second one, never a third.
    assert set(statuses) == {401, 429} and statuses.count(401) <= 200
    retry_after, answer = limited[0]
    assert int(retry_after) >= 1 and answer["error"]["code"] == "rate_limited"


@pytest.mark.parametrize("header", [b"Bearer \xff\xfe", b"Bearer flattr_\xc3\xa9t\xc3\xa9",
                                    b"Basic dXNlcjpwYXNz", b"Bearer", b"\xff"])
async def test_an_authorization_header_that_is_no_bearer_token_is_a_401(client, header):
    for path in (b"/api/v1/me", b"/api/v1/things?url=https://a.example/"):
        answer = await exchange(client.host, client.port, b"GET " + path + b" HTTP/1.1\r\n"
                                b"Host: 127.0.0.1\r\nAuthorization: " + header + b"\r\n\r\n")
        assert answer.status == 401, answer.body
        assert answer.json()["error"]["code"] == "unauthorized"
        assert answer.headers["www-authenticate"].startswith("Bearer")


async def test_a_chat_user_s_handle_cannot_be_squatted(client, privileged, engine):
    from core import members

    taken = {"te123", *(f"te123_{n}" for n in range(1, 10))}
    async with engine.begin() as conn:
        for handle in taken:
            await members.create_member(conn, handle)
    _, bot_token = await privileged("botty", "bot")
    made = await client.post("/api/v1/bot/members", json={"identity": "telegram:123"},
                             headers={"Authorization": f"Bearer {bot_token}"})
    assert made.status == 201, await made.text()
    handle = (await made.json())["member"]["handle"]
    assert handle.startswith("te123_") and handle not in taken
    found = await client.post("/api/v1/bot/members", json={"identity": "telegram:123"},
                              headers={"Authorization": f"Bearer {bot_token}"})
    assert found.status == 200 and (await found.json())["member"]["handle"] == handle
