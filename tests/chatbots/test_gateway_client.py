"""The bots' gateway client against a real gateway (each backend), through a proxy that
fails, loses answers and rate-limits on demand."""

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from web_sign_in_link import use_sign_in_link

from bots.client import GatewayClient, GatewayError, GatewayUnavailable, RateLimited, Retrying
from core.schema import flattrs

POST = "telegram:-1001234/56"


async def flattr_rows(engine) -> int:
    async with engine.connect() as conn:
        return await conn.scalar(select(func.count()).select_from(flattrs))


async def test_members_flattrs_and_take_back_through_the_client(gateway, engine, web_member):
    member, created = await gateway.create_member("telegram:42")
    again, created_again = await gateway.create_member("telegram:42")
    assert created and not created_again and again == member
    await web_member("author", identity="telegram:7")
    made = await gateway.flattr("telegram:42", thing=POST, author="telegram:7")
    assert made.created and made.thing == POST and made.owner == "author"
    repeated = await gateway.flattr("telegram:42", thing=POST, author="telegram:7")
    assert not repeated.created and repeated.id == made.id
    month = await gateway.month("telegram:42")
    assert month.handle == member.handle and month.flattr_count == 1
    taken = await gateway.take_back("telegram:42", thing=POST)
    assert taken.id == made.id and await flattr_rows(engine) == 0
    with pytest.raises(GatewayError) as missing:
        await gateway.take_back("telegram:42", thing=POST)
    assert missing.value.status == 404 and missing.value.code == "not_found"


async def test_a_sign_in_link_signs_its_member_in_once(gateway, proxy, gateway_server):
    member, _ = await gateway.create_member("telegram:42")
    made = await gateway.sign_in_link("telegram:42")
    now = datetime.now(UTC)
    assert now + timedelta(minutes=14) < made.expires_at <= now + timedelta(minutes=15)
    assert made.minutes_left(now) == 15
    (asked,) = proxy.requests("/api/v1/bot/sign-in-links")
    assert "Flattr-Identity" not in asked.headers  # the bot's own errand
    status, path, page = await use_sign_in_link(gateway_server, made.url)
    assert (status, path) == (200, "/account") and f"Welcome, {member.handle}" in page
    status, _, page = await use_sign_in_link(gateway_server, made.url)
    assert status == 400 and "unknown, used or expired" in page
    with pytest.raises(GatewayError) as unlinked:
        await gateway.sign_in_link("telegram:43")
    assert (unlinked.value.status, unlinked.value.code) == (403, "identity_not_linked")
    with pytest.raises(GatewayError) as bad:
        await gateway.sign_in_link("nowhere")
    assert bad.value.status == 400


async def test_error_answers_carry_the_gateway_s_code_and_are_not_retried(gateway, proxy):
    await gateway.create_member("telegram:42")
    with pytest.raises(GatewayError) as bad:
        await gateway.flattr("telegram:42", url="javascript:alert(1)")
    assert bad.value.status == 400 and bad.value.code == "invalid_url"
    with pytest.raises(GatewayError) as unlinked:
        await gateway.flattr("telegram:99", thing=POST, author="telegram:7")
    assert unlinked.value.code == "identity_not_linked"
    assert len(proxy.requests("/api/v1/flattrs")) == 2  # one try each


async def test_5xx_answers_are_retried_until_one_gets_through(gateway, proxy, engine):
    await gateway.create_member("telegram:42")
    proxy.fail_next(3, status=503)
    made = await gateway.flattr("telegram:42", url="https://example.com/a")
    assert made.created
    tries = proxy.requests("/api/v1/flattrs")
    assert [t.outcome for t in tries] == ["failed"] * 3 + ["forwarded"]
    assert len({t.headers["Idempotency-Key"] for t in tries}) == 1
    assert await flattr_rows(engine) == 1


async def test_a_lost_answer_is_retried_with_its_key_and_stays_one_flattr(gateway, proxy,
                                                                         engine):
    await gateway.create_member("telegram:42")
    proxy.lose_next(1)  # the gateway flattrs, the answer never arrives
    made = await gateway.flattr("telegram:42", url="https://example.com/a")
    tries = proxy.requests("/api/v1/flattrs")
    assert [t.outcome for t in tries] == ["lost", "forwarded"]
    assert tries[0].headers["Idempotency-Key"] == tries[1].headers["Idempotency-Key"]
    assert made.created  # the first answer, replayed
    assert await flattr_rows(engine) == 1
    # A later flattr gets a key of its own.
    await gateway.flattr("telegram:42", url="https://example.com/b")
    keys = {t.headers["Idempotency-Key"] for t in proxy.requests("/api/v1/flattrs")}
    assert len(keys) == 2


async def test_a_429_waits_its_retry_after_or_is_raised_when_too_long(gateway, proxy):
    proxy.limit_next(1, retry_after=1)
    started = time.monotonic()
    await gateway.create_member("telegram:42")
    assert time.monotonic() - started >= 1.0
    proxy.limit_next(1, retry_after=60)
    with pytest.raises(RateLimited) as limited:
        await gateway.create_member("telegram:42")
    assert limited.value.retry_after == 60
    assert [t.outcome for t in proxy.requests("/api/v1/bot/members")] == [
        "limited", "forwarded", "limited"]


async def test_a_gateway_that_stays_down_raises_unavailable_after_its_tries(proxy, bot_token):
    proxy.down = True
    retrying = Retrying(attempts=3, backoff_seconds=0.1, backoff_max_seconds=1.0)
    async with GatewayClient(proxy.url, bot_token, retrying=retrying) as client:
        started = time.monotonic()
        with pytest.raises(GatewayUnavailable) as down:
            await client.flattr("telegram:42", url="https://example.com/a")
        assert time.monotonic() - started >= 0.1 + 0.2
    assert "503" in str(down.value) and len(proxy.seen) == 3


async def test_no_server_at_all_is_unavailable(bot_token):
    retrying = Retrying(attempts=2, backoff_seconds=0.01)
    async with GatewayClient("http://127.0.0.1:9", bot_token, retrying=retrying) as client:
        with pytest.raises(GatewayUnavailable, match="did not answer"):
            await client.month("telegram:42")
