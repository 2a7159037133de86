"""A bot's requests count against its token's own limit, not against its address; the
address still limits everyone else there, and a bot acting for a chat user is held to that
user's limit. In-process and with Redis, on each backend."""

from core import members

LEASE = {"platform": "telegram"}


async def _bot(privileged, name: str = "deliverer") -> dict[str, str]:
    _, token = await privileged(name, "bot")
    return {"Authorization": f"Bearer {token}"}


async def test_a_bot_delivers_beyond_its_address_s_limit(make_client, limits_store,
                                                         privileged, sign_up):
    client = await make_client(redis_url=limits_store, rate_limit_per_minute_per_address=20,
                               rate_limit_per_minute=10)
    bot = await _bot(privileged)
    for _ in range(60):
        response = await client.post("/api/v1/bot/outbox/lease", json=LEASE, headers=bot)
        assert response.status == 200, await response.text()
    assert response.headers["X-RateLimit-Limit"] == "120000"
    assert response.headers["X-RateLimit-Remaining"] == str(120000 - 60)
    # The address kept its count for everyone else: a member there signs up and reads.
    pia = await sign_up("pia", on=client)
    for _ in range(8):
        await pia.call("GET", "/me", status=200)
    # Requests without a valid token still use it up, before any lookup.
    statuses = [(await client.get("/api/v1/me", headers={"Authorization": "Bearer flattr_x"})
                 ).status for _ in range(15)]
    assert statuses.count(401) == 20 - 2 - 8 and set(statuses) == {401, 429}
    # An address over its limit is refused before its token is looked up, a bot's too.
    refused = await client.post("/api/v1/bot/outbox/lease", json=LEASE, headers=bot)
    assert refused.status == 429


async def test_a_bot_token_has_its_own_limit(make_client, limits_store, privileged):
    client = await make_client(redis_url=limits_store, rate_limit_per_minute_per_bot=30)
    bot = await _bot(privileged)
    statuses = [(await client.post("/api/v1/bot/outbox/ack", json={"ids": [1]}, headers=bot)
                 ).status for _ in range(32)]
    assert statuses == [200] * 30 + [429] * 2
    refused = await client.post("/api/v1/bot/outbox/lease", json=LEASE, headers=bot)
    assert refused.status == 429 and int(refused.headers["Retry-After"]) >= 1
    assert (await refused.json())["error"]["code"] == "rate_limited"
    other = await _bot(privileged, "other-bot")  # another bot counts on its own
    response = await client.post("/api/v1/bot/outbox/lease", json=LEASE, headers=other)
    assert response.status == 200


async def test_a_bot_acting_for_a_chat_user_is_held_to_that_user_s_limit(
    make_client, limits_store, privileged, engine
):
    client = await make_client(redis_url=limits_store, rate_limit_per_minute=5,
                               rate_limit_per_minute_per_address=20)
    bot = await _bot(privileged)
    async with engine.begin() as conn:
        for n in range(6):
            member = await members.create_member(conn, f"chat{n}")
            await members.link_identity(conn, member.id, f"telegram:{n + 1}")
    for n in range(6):  # 36 requests from one address with a limit of 20
        acting = {**bot, "Flattr-Identity": f"telegram:{n + 1}"}
        statuses = [(await client.get("/api/v1/me", headers=acting)).status for _ in range(6)]
        assert statuses == [200] * 5 + [429], n
    response = await client.post("/api/v1/bot/outbox/lease", json=LEASE, headers=bot)
    assert response.status == 200
