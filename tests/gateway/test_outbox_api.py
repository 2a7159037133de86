"""The bots' outbox API on each backend: leases, acknowledgements, failures, dead letters."""

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest
from outbox_messages import chat_members, delivery_states, lease_ends, message, queue
from sqlalchemy import select

from core import members, notifications, outbox
from core.schema import identities, outbox_deliveries
from core.settings import Settings
from gateway.app import create_app


@pytest.fixture
def limits_store() -> None:
    return None  # in-process: these tests are about delivery (test_bot_limits has Redis)


class Bot:
    """A bot calling with its own token."""

    def __init__(self, client, token: str) -> None:
        self.client = client
        self.auth = {"Authorization": f"Bearer {token}"}

    async def post(self, path: str, body: dict | None = None, *, status: int = 200) -> dict:
        response = await self.client.post("/api/v1" + path, json=body, headers=self.auth)
        answer = await response.json()
        assert response.status == status, answer
        return answer

    async def lease(self, **options) -> list[dict]:
        answer = await self.post("/bot/outbox/lease", {"platform": "telegram", **options})
        return answer["messages"]


@pytest.fixture
async def bot(client, privileged) -> Bot:
    _, token = await privileged("deliverer", "bot")
    return Bot(client, token)


@pytest.fixture
async def admin(client, privileged) -> Bot:
    _, token = await privileged("operator", "admin,read")
    return Bot(client, token)


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_a_lease_hands_each_message_out_once(bot, engine):
    (member_id,) = await chat_members(engine, 1)
    await queue(engine, [message(member_id)])
    before = datetime.now(UTC)
    (leased,) = await bot.lease(max=10, lease_seconds=120)
    assert leased["platform"] == "telegram" and leased["identity"] == "telegram:1000"
    assert leased["chat_id"] == "1000" and leased["attempt"] == 1
    assert leased["kind"] == "summary" and leased["period"] == "2026-10"
    assert leased["text"] == "2026-10: 5.00 EUR shared among 3 things"
    assert leased["subject"] == "Your Flattr month 2026-10"
    expires = moment(leased["lease_expires_at"])
    assert before + timedelta(seconds=119) <= expires <= datetime.now(UTC) + timedelta(seconds=121)
    assert await bot.lease() == []  # leased: nobody else gets it meanwhile
    assert await bot.lease(platform="discord") == []


async def test_concurrent_leases_never_share_a_message(bot, engine):
    member_ids = await chat_members(engine, 120)
    await queue(engine, [message(m) for m in member_ids])
    batches = await asyncio.gather(*(bot.lease(max=20) for _ in range(8)))
    ids = [m["id"] for batch in batches for m in batch]
    assert len(ids) == len(set(ids)) == 120
    assert {m["identity"] for batch in batches for m in batch} == {
        f"telegram:{1000 + n}" for n in range(120)}


async def test_a_message_not_acknowledged_comes_back_after_its_lease(bot, engine):
    (member_id,) = await chat_members(engine, 1)
    await queue(engine, [message(member_id)])
    (first,) = await bot.lease()
    assert await bot.lease() == []
    await lease_ends(engine, [first["id"]])
    (again,) = await bot.lease()
    assert again["id"] == first["id"] and again["attempt"] == 2


async def test_an_acknowledgement_is_final_and_may_be_sent_twice(bot, engine):
    member_ids = await chat_members(engine, 3)
    await queue(engine, [message(m) for m in member_ids])
    leased = await bot.lease()
    one, *others = [m["id"] for m in leased]
    assert await bot.post(f"/bot/outbox/{one}/ack") == {"id": one, "state": "sent",
                                                         "currency": "EUR"}
    assert (await bot.post(f"/bot/outbox/{one}/ack"))["state"] == "sent"
    batch = await bot.post("/bot/outbox/ack", {"ids": [one, *others]})
    assert batch["acknowledged"] == 2  # the one acknowledged before is not counted again
    assert (await bot.post("/bot/outbox/ack", {"ids": others}))["acknowledged"] == 0
    await lease_ends(engine)
    assert await bot.lease() == []  # a delivered message never comes back
    assert set((await delivery_states(engine)).values()) == {"sent"}
    late = await bot.post(f"/bot/outbox/{one}/fail", {"retry_after": 5})
    assert late["state"] == "sent"  # a late failure of a try another one delivered


async def test_concurrent_acknowledgements_are_each_answered_for_their_own_message(
    bot, engine
):
    member_ids = await chat_members(engine, 12)
    await queue(engine, [message(m) for m in member_ids])
    ids = [m["id"] for m in await bot.lease(max=12)]
    paths = [f"/api/v1/bot/outbox/{i}/ack" for i in [*ids, ids[0], 987654]]
    answers = await asyncio.gather(*(bot.client.post(p, headers=bot.auth) for p in paths))
    assert [a.status for a in answers] == [200] * 13 + [404]
    assert [(await a.json()).get("id") for a in answers[:13]] == [*ids, ids[0]]
    assert set((await delivery_states(engine)).values()) == {"sent"}


async def test_a_failure_backs_off_exponentially(bot, engine):
    (member_id,) = await chat_members(engine, 1)
    await queue(engine, [message(member_id)])
    waits = []
    for attempt in (1, 2, 3):
        (leased,) = await bot.lease()
        assert leased["attempt"] == attempt
        failed = await bot.post(f"/bot/outbox/{leased['id']}/fail",
                                {"retry_after": 0, "reason": "429 from Telegram"})
        assert failed["state"] == "pending" and failed["attempts"] == attempt
        assert failed["error"] == "429 from Telegram"
        waits.append((moment(failed["retry_at"]) - datetime.now(UTC)).total_seconds())
        assert await bot.lease() == []  # not before its back-off
        await lease_ends(engine)
    assert [round(w / 10) * 10 for w in waits] == [30, 60, 120]
    (leased,) = await bot.lease()
    asked = await bot.post(f"/bot/outbox/{leased['id']}/fail", {"retry_after": 3600})
    wait = (moment(asked["retry_at"]) - datetime.now(UTC)).total_seconds()
    assert 3590 < wait <= 3600  # the sender's retry_after when longer than the back-off


async def test_a_failure_saying_neither_when_nor_for_good_is_retried_after_the_back_off(
        bot, engine):
    (member_id,) = await chat_members(engine, 1)
    await queue(engine, [message(member_id)])
    for attempt, body in enumerate(({}, {"reason": "timeout"}, {"permanent": False}), 1):
        (leased,) = await bot.lease()
        failed = await bot.post(f"/bot/outbox/{leased['id']}/fail", body)
        assert (failed["state"], failed["attempts"]) == ("pending", attempt)
        assert failed["error"] == body.get("reason", "failed")
        wait = (moment(failed["retry_at"]) - datetime.now(UTC)).total_seconds()
        backoff = outbox.backoff(attempt).total_seconds()
        assert backoff - 10 < wait <= backoff
        assert await bot.lease() == []  # not before its back-off
        await lease_ends(engine)
    (again,) = await bot.lease()
    assert again["attempt"] == 4


async def test_after_its_last_try_a_message_is_dead_and_listed_for_admins(bot, admin, engine):
    (member_id,) = await chat_members(engine, 1)
    await queue(engine, [message(member_id)])
    for attempt in range(1, outbox.MAX_ATTEMPTS + 1):
        (leased,) = await bot.lease()
        assert leased["attempt"] == attempt
        failed = await bot.post(f"/bot/outbox/{leased['id']}/fail", {"retry_after": 0})
        await lease_ends(engine)
    assert failed["state"] == "dead" and failed["retry_at"] is None
    assert await bot.lease() == []
    response = await admin.client.get("/api/v1/admin/outbox?state=dead", headers=admin.auth)
    (dead,) = (await response.json())["deliveries"]
    assert dead["id"] == leased["id"] and dead["attempts"] == outbox.MAX_ATTEMPTS
    assert dead["handle"] == "chatter0" and dead["address"] == "telegram:1000"
    retried = await admin.post(f"/admin/outbox/{dead['id']}/retry")
    assert retried["delivery"]["state"] == "pending" and retried["delivery"]["attempts"] == 0
    (again,) = await bot.lease()
    assert again["id"] == dead["id"] and again["attempt"] == 1
    await bot.post(f"/bot/outbox/{again['id']}/ack")
    refused = await admin.post(f"/admin/outbox/{again['id']}/retry", status=409)
    assert refused["error"]["code"] == "invalid_state"
    assert (await admin.post("/admin/outbox/999999/retry", status=404))["error"]["code"] == \
        "not_found"


async def test_a_lease_run_out_after_the_last_try_is_dead_too(bot, engine):
    (member_id,) = await chat_members(engine, 1)
    await queue(engine, [message(member_id)])
    for _ in range(outbox.MAX_ATTEMPTS):
        assert len(await bot.lease()) == 1
        await lease_ends(engine)  # the sender died without a word
    assert await bot.lease() == []
    assert list((await delivery_states(engine)).values()) == ["dead"]


async def test_a_permanent_failure_makes_the_identity_unreachable(bot, client, engine, sign_up):
    ada = await sign_up("ada")
    async with engine.begin() as conn:
        await members.link_identity(conn, ada.id, "telegram:777")
    await queue(engine, [message(ada.id, "2026-09"), message(ada.id, "2026-10")])
    first, second = await bot.lease()
    blocked = await bot.post(f"/bot/outbox/{first['id']}/fail",
                             {"permanent": True, "reason": "Forbidden: bot was blocked"})
    assert blocked["state"] == "unreachable"
    # The other message to that chat stops too, and the next month makes no delivery.
    assert await delivery_states(engine) == {first["id"]: "unreachable",
                                             second["id"]: "unreachable"}
    failed_late = await bot.post(f"/bot/outbox/{second['id']}/fail", {"retry_after": 1})
    assert failed_late["state"] == "unreachable"  # a late failure does not revive it
    await queue(engine, [message(ada.id, "2026-11")])
    await lease_ends(engine)
    assert await bot.lease() == []
    async with engine.connect() as conn:
        assert (await conn.scalar(select(identities.c.unreachable_reason).where(
            identities.c.identity == "telegram:777"))) == "Forbidden: bot was blocked"
        count = await conn.scalar(select(outbox_deliveries.c.id).where(
            outbox_deliveries.c.address == "telegram:777").order_by(
            outbox_deliveries.c.id.desc()))
        assert count == second["id"]  # no delivery was made for 2026-11
    # Every message stays in the web inbox; the member sees why the chat got none.
    inbox = await ada.call("GET", "/messages", status=200)
    assert [m["period"] for m in inbox["messages"]] == ["2026-11", "2026-10", "2026-09"]
    chosen = await ada.call("GET", "/me/notifications", status=200)
    assert chosen["identities"] == [{"identity": "telegram:777", "reachable": False,
                                     "unreachable_reason": "Forbidden: bot was blocked"}]


async def test_e_mail_is_not_leased_nor_answered_over_http(bot, engine):
    async with engine.begin() as conn:
        member = await members.create_member(conn, "mailer", email="m@example.com")
        await notifications.choose(conn, member.id, {"email": True})
    await queue(engine, [message(member.id)])
    (email_id,) = (await delivery_states(engine)).keys()
    refused = await bot.post("/bot/outbox/lease", {"platform": "email"}, status=400)
    assert refused["error"]["code"] == "invalid_request"
    assert "worker" in refused["error"]["message"]
    for path, body in ((f"/bot/outbox/{email_id}/ack", None),
                       (f"/bot/outbox/{email_id}/fail", {"permanent": True})):
        assert (await bot.post(path, body, status=404))["error"]["code"] == "not_found"
    assert (await bot.post("/bot/outbox/ack", {"ids": [email_id]}))["acknowledged"] == 0
    assert await delivery_states(engine) == {email_id: "pending"}


@pytest.mark.parametrize(("path", "body"), [
    ("/bot/outbox/lease", {}),
    ("/bot/outbox/lease", {"platform": "signal"}),
    ("/bot/outbox/lease", {"platform": "telegram", "max": 0}),
    ("/bot/outbox/lease", {"platform": "telegram", "max": 501}),
    ("/bot/outbox/lease", {"platform": "telegram", "max": "50"}),
    ("/bot/outbox/lease", {"platform": "telegram", "lease_seconds": 4}),
    ("/bot/outbox/lease", {"platform": "telegram", "lease_seconds": 901}),
    ("/bot/outbox/lease", {"platform": "telegram", "wait": 31}),
    ("/bot/outbox/lease", {"platform": "telegram", "extra": 1}),
    ("/bot/outbox/1/fail", {"retry_after": 5, "permanent": True}),
    ("/bot/outbox/1/fail", {"retry_after": 0, "permanent": True}),
    ("/bot/outbox/1/fail", {"retry_after": -1}),
    ("/bot/outbox/1/fail", {"retry_after": 1.5}),
    ("/bot/outbox/1/fail", {"permanent": True, "reason": "x" * 501}),
    ("/bot/outbox/1/fail", {"permanent": "yes"}),
    ("/bot/outbox/ack", {}),
    ("/bot/outbox/ack", {"ids": []}),
    ("/bot/outbox/ack", {"ids": list(range(1, 502))}),
    ("/bot/outbox/ack", {"ids": [0]}),
    ("/bot/outbox/ack", {"ids": [2**63]}),
    ("/bot/outbox/ack", {"ids": ["1"]}),
    ("/bot/outbox/ack", [1, 2]),
])
async def test_bad_bodies_are_refused_with_400(bot, path, body):
    answer = await bot.post(path, body, status=400)
    assert answer["error"]["code"] == "invalid_request"


async def test_unknown_ids_are_404(bot):
    for path, body in (("/bot/outbox/999/ack", None), ("/bot/outbox/999/fail",
                                                        {"retry_after": 1}),
                       ("/bot/outbox/x/ack", None), ("/bot/outbox/0/ack", None),
                       ("/bot/outbox/99999999999999999999/ack", None)):
        assert (await bot.post(path, body, status=404))["error"]["code"] == "not_found"
    assert (await bot.post("/bot/outbox/ack", {"ids": [999]}))["acknowledged"] == 0


async def test_only_the_bot_itself_may_lease(client, bot, sign_up, engine):
    bea = await sign_up("bea")
    async with engine.begin() as conn:
        await members.link_identity(conn, bea.id, "telegram:55")
    await queue(engine, [message(bea.id)])
    body = {"platform": "telegram"}
    for headers, status in (({}, 401), (bea.auth, 403),
                            ({**bot.auth, "Flattr-Identity": "telegram:55"}, 403)):
        for path in ("/bot/outbox/lease", "/bot/outbox/1/ack", "/bot/outbox/ack"):
            response = await client.post("/api/v1" + path, json=body if "lease" in path else
                                         {"ids": [1]}, headers=headers)
            assert response.status == status, (path, await response.text())
    assert set((await delivery_states(engine)).values()) == {"pending"}
    assert len(await bot.lease()) == 1


async def test_a_long_poll_answers_as_soon_as_a_message_is_due(bot, engine):
    (member_id,) = await chat_members(engine, 1)
    started = time.monotonic()
    assert await bot.lease(wait=1) == []
    assert 0.9 <= time.monotonic() - started < 3
    waiting = asyncio.create_task(bot.lease(wait=10))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    queued_at = time.monotonic()
    await queue(engine, [message(member_id)])
    (leased,) = await asyncio.wait_for(waiting, 5)
    assert leased["identity"] == "telegram:1000"
    assert time.monotonic() - queued_at < 2


async def test_metrics_show_the_outbox_by_state_and_the_oldest_waiting(client, bot, engine):
    member_ids = await chat_members(engine, 4)
    await queue(engine, [message(m) for m in member_ids])
    leased = await bot.lease(max=3)
    await bot.post(f"/bot/outbox/{leased[0]['id']}/ack")
    await bot.post(f"/bot/outbox/{leased[1]['id']}/fail", {"permanent": True})
    await asyncio.sleep(1.1)
    response = await client.get("/metrics")
    assert response.status == 200
    lines = (await response.text()).splitlines()
    values = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
              for line in lines if line.startswith("flattr_outbox")}
    assert values['flattr_outbox_messages{state="pending"}'] == 1
    assert values['flattr_outbox_messages{state="leased"}'] == 1
    assert values['flattr_outbox_messages{state="unreachable"}'] == 1
    assert values['flattr_outbox_messages{state="dead"}'] == 0
    assert 1.0 <= values["flattr_outbox_oldest_pending_seconds"] < 60
    assert values["flattr_outbox_scrape_errors_total"] == 0
    assert "# TYPE flattr_outbox_messages gauge" in lines


async def test_metrics_answer_while_the_database_does_not(aiohttp_client, backend, tmp_path,
                                                          gateway_settings):
    away = {"sqlite": f"sqlite:///{tmp_path}/no/such/folder/flattr.db",
            "postgresql": "postgresql://postgres@127.0.0.1:1/flattr"}[backend]
    client = await aiohttp_client(create_app(Settings(database_url=away), gateway_settings))
    for scrape in (1, 2):
        response = await client.get("/metrics")
        assert response.status == 200
        text = await response.text()
        assert f"flattr_outbox_scrape_errors_total {scrape}\n" in text
        assert "# flattr_outbox_messages unavailable: " in text
        assert "flattr_outbox_messages{" not in text
        assert f"flattr_http_request_seconds_count {scrape - 1}\n" in text  # and the rest
