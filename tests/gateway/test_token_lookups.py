"""Tokens the cache has not seen, of concurrent requests, are looked up together: a cold
cache under load costs a query a batch, and each token still gets its own answer."""

import asyncio

from sqlalchemy import event

from core import members, tokens
from gateway import keys


async def issue(engine, member_id: int, count: int) -> list[tokens.IssuedToken]:
    async with engine.begin() as conn:
        return [await tokens.issue_token(conn, member_id, frozenset({"read"}))
                for _ in range(count)]


async def test_concurrent_cache_misses_share_queries_and_keep_their_answers(client, engine):
    async with engine.begin() as conn:
        alice = await members.create_member(conn, "alice")
        bob = await members.create_member(conn, "bob")
    live = await issue(engine, alice.id, 30) + await issue(engine, bob.id, 10)
    revoked = await issue(engine, bob.id, 5)
    async with engine.begin() as conn:
        for token in revoked:
            await tokens.revoke_token(conn, bob.id, token.info.id)
    unknown = [f"{tokens.TOKEN_PREFIX}unknown{n}" for n in range(5)]

    lookups: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany) -> None:
        if "FROM api_tokens" in statement:
            lookups.append(statement)

    gateway_engine = client.server.app[keys.engine_key].sync_engine
    event.listen(gateway_engine, "before_cursor_execute", count)
    try:
        asked = ([(t.token, alice.handle if t.info.member_id == alice.id else bob.handle)
                  for t in live]
                 + [(t.token, None) for t in revoked] + [(t, None) for t in unknown])
        answers = await asyncio.gather(*(
            client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
            for token, _ in asked))
        for (_, handle), answer in zip(asked, answers, strict=True):
            body = await answer.json()
            if handle is None:
                assert answer.status == 401, body
                assert body["error"]["code"] == "unauthorized"
            else:
                assert answer.status == 200, body
                assert body["member"]["handle"] == handle
    finally:
        event.remove(gateway_engine, "before_cursor_execute", count)
    # 50 tokens the cache missed, looked up in a few queries rather than one each.
    assert 1 <= len(lookups) <= 10, len(lookups)


async def test_a_token_revoked_after_a_batched_lookup_is_refused_once_the_cache_forgets(
        client, engine):
    async with engine.begin() as conn:
        carol = await members.create_member(conn, "carol")
    [token] = await issue(engine, carol.id, 1)
    headers = {"Authorization": f"Bearer {token.token}"}
    assert (await client.get("/api/v1/me", headers=headers)).status == 200
    async with engine.begin() as conn:
        await tokens.revoke_token(conn, carol.id, token.info.id)
    client.server.app[keys.token_cache_key].entries.clear()  # as its expiry would
    answer = await client.get("/api/v1/me", headers=headers)
    assert answer.status == 401, await answer.text()
