"""What the chat bots call, on a real gateway over each backend: a flattr taken back by its
thing, chat settings, /me's `received`, what waits for an unlinked author, and the errors a
bot acting for a chat identity gets."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, text

from core import flattrs, members
from core.periods import Period
from core.schema import chat_settings
from core.schema import flattrs as flattrs_table
from gateway import keys


@pytest.fixture
def limits_store() -> None:
    return None  # in-process: these tests are about the routes (test_bot_limits has Redis)


class Caller:
    """Calls with one set of headers and checks the status."""

    def __init__(self, client, headers: dict[str, str]) -> None:
        self.client = client
        self.headers = headers

    def acting_for(self, identity: str) -> "Caller":
        return Caller(self.client, {**self.headers, "Flattr-Identity": identity})

    async def call(self, method: str, path: str, status: int, **kwargs) -> dict:
        response = await self.client.request(method, "/api/v1" + path, headers=self.headers,
                                             **kwargs)
        answer = await response.json()
        assert response.status == status, (method, path, answer)
        return answer

    async def error(self, method: str, path: str, status: int, **kwargs) -> str:
        return (await self.call(method, path, status, **kwargs))["error"]["code"]


@pytest.fixture
async def bot(client, privileged) -> Caller:
    _, token = await privileged("botty", "bot")
    return Caller(client, {"Authorization": f"Bearer {token}"})


async def link(engine, member_id: int, identity: str) -> None:
    async with engine.begin() as conn:
        await members.link_identity(conn, member_id, identity)


async def flattr_count(engine) -> int:
    async with engine.connect() as conn:
        return await conn.scalar(select(func.count()).select_from(flattrs_table))


# --- DELETE /flattrs?thing= | ?url= ---------------------------------------------------------

async def test_a_member_takes_a_flattr_back_by_its_thing_or_url(sign_up, engine):
    ann = await sign_up("ann")
    await ann.call("POST", "/flattrs", json={"thing": "telegram:-100123/45"}, status=201)
    await ann.call("POST", "/flattrs", json={"url": "https://blog.example/a"}, status=201)
    listed = (await ann.call("GET", "/flattrs", status=200))["flattrs"]

    taken = await ann.call("DELETE", "/flattrs?thing=telegram:-100123/45", status=200)
    assert taken["deleted"] == listed[0]
    assert taken["deleted"]["funding"] == "pending"
    by_url = await ann.call("DELETE", "/flattrs", params={"url": "HTTPS://Blog.example/a?utm_x=1"},
                            status=200)
    assert by_url["deleted"] == listed[1]
    again = await ann.call("DELETE", "/flattrs?thing=telegram:-100123/45", status=404)
    assert again["error"]["code"] == "not_found"
    assert await flattr_count(engine) == 0


@pytest.mark.parametrize("query", [
    "", "?thing=telegram:-1/2&url=https://a.example/", "?thing=", "?thing=telegram:x/1",
    "?url=ftp://a.example/", "?thing=telegram:-1/2&thing=telegram:-1/3",
    "?thing=telegram:-1/2&period=2026-11",
])
async def test_a_bad_query_is_400_and_takes_nothing_back(sign_up, engine, query):
    ann = await sign_up("ann")
    await ann.call("POST", "/flattrs", json={"thing": "telegram:-1/2"}, status=201)
    answer = await ann.call("DELETE", "/flattrs" + query, status=400)
    assert answer["error"]["code"] in ("invalid_request", "invalid_thing", "invalid_url")
    assert await flattr_count(engine) == 1


async def test_a_flattr_of_a_month_being_settled_or_ended_stays(sign_up, engine):
    ann = await sign_up("ann")
    await ann.call("POST", "/flattrs", json={"thing": "telegram:-1/2"}, status=201)
    async with engine.begin() as conn:  # a flattr of the month just ended
        await flattrs.flattr(conn, ann.id, "telegram:-1/3", period=Period.current().previous())
    late = await ann.call("DELETE", "/flattrs?thing=telegram:-1/3", status=409)
    assert late["error"]["code"] == "period_closed"
    async with engine.begin() as conn:
        await conn.execute(text(
            "INSERT INTO settlements (period, stage, status, fee_bps, minimum_budget_micros, "
            "hold_months, idle_budget, started_at) VALUES "
            "(:period, 0, 'settling', 1000, 2000000, 6, 'keep', CURRENT_TIMESTAMP)"),
            {"period": str(Period.current())})
    (current,) = (await ann.call("GET", "/flattrs", status=200))["flattrs"]
    closed = await ann.call("DELETE", "/flattrs?thing=telegram:-1/2", status=409)
    by_id = await ann.call("DELETE", f"/flattrs/{current['id']}", status=409)
    assert closed["error"] == by_id["error"] and closed["error"]["code"] == "period_closed"
    assert await flattr_count(engine) == 2


async def test_a_bot_takes_back_the_flattr_it_made_for_a_chat_user(bot, sign_up, engine):
    ann = await sign_up("ann")
    await link(engine, ann.id, "telegram:42")
    acting = bot.acting_for("telegram:42")
    made = await acting.call("POST", "/flattrs", 201,
                             json={"thing": "telegram:-100/7", "author": "telegram:789"})
    taken = await acting.call("DELETE", "/flattrs?thing=telegram:-100/7", 200)
    assert taken["deleted"]["id"] == made["flattr"]["id"]
    assert taken["deleted"]["source"] == "telegram"
    assert await acting.error("DELETE", "/flattrs?thing=telegram:-100/7", 404) == "not_found"
    unlinked = bot.acting_for("telegram:43")
    assert await unlinked.error("DELETE", "/flattrs?thing=telegram:-100/7",
                                403) == "identity_not_linked"
    assert await bot.error("DELETE", "/flattrs?thing=telegram:-100/7",
                           403) == "insufficient_scope"  # the bot has no flattrs of its own
    reader = await sign_up("reader", scopes=("read",))
    assert (await reader.call("DELETE", "/flattrs?thing=telegram:-100/7", status=403))[
        "error"]["code"] == "insufficient_scope"


# --- chat settings ----------------------------------------------------------------------------

async def test_a_chat_never_set_has_the_defaults(bot):
    assert await bot.call("GET", "/bot/chats/telegram:-100123", 200) == {
        "chat": "telegram:-100123", "emoji": None, "owner": None, "channels": [],
        "updated_at": None, "currency": "EUR"}
    assert (await bot.call("GET", "/bot/chats/discord:42", 200))["chat"] == "discord:42"


async def test_the_bot_changes_what_it_names_and_the_database_keeps_it(
    bot, make_client, privileged, engine
):
    before = datetime.now(UTC)
    first = await bot.call("PUT", "/bot/chats/telegram:-100123", 200,
                           json={"emoji": "🔥", "owner": "telegram:42"})
    assert (first["emoji"], first["owner"], first["channels"]) == ("🔥", "telegram:42", [])
    updated = datetime.fromisoformat(first["updated_at"].replace("Z", "+00:00"))
    assert before <= updated <= datetime.now(UTC)
    second = await bot.call("PUT", "/bot/chats/telegram:-100123", 200,
                            json={"channels": ["5", "6", "5"]})
    assert (second["emoji"], second["owner"], second["channels"]) == ("🔥", "telegram:42",
                                                                      ["5", "6"])
    # What GET shows may be sent back as it is, changed.
    shown = await bot.call("GET", "/bot/chats/telegram:-100123", 200)
    assert shown == second
    back = await bot.call("PUT", "/bot/chats/telegram:-100123", 200,
                          json={**shown, "owner": None})
    assert (back["emoji"], back["owner"], back["channels"]) == ("🔥", None, ["5", "6"])
    # Another gateway on the same database (a restart) sees the same settings.
    other = await make_client()
    again = Caller(other, bot.headers)
    assert await again.call("GET", "/bot/chats/telegram:-100123", 200) == back
    assert (await again.call("GET", "/bot/chats/discord:100123", 200))["updated_at"] is None


@pytest.mark.parametrize(("chat", "body", "code"), [
    ("telegram:abc", {"emoji": "👍"}, "invalid_chat"),
    ("telegram:0", {"emoji": "👍"}, "invalid_chat"),
    ("discord:-5", {"emoji": "👍"}, "invalid_chat"),
    ("slack:5", {"emoji": "👍"}, "invalid_chat"),
    ("telegram:-5", {"emoji": ""}, "invalid_request"),
    ("telegram:-5", {"emoji": "x" * 65}, "invalid_request"),
    ("telegram:-5", {"emoji": "a b"}, "invalid_chat"),
    ("telegram:-5", {"emoji": 5}, "invalid_request"),
    ("telegram:-5", {"owner": "telegram:x"}, "invalid_identity"),
    ("telegram:-5", {"owner": "discord:5"}, "invalid_identity"),
    ("telegram:-5", {"channels": None}, "invalid_request"),
    ("telegram:-5", {"channels": ["1a"]}, "invalid_request"),
    ("telegram:-5", {"channels": [5]}, "invalid_request"),
    ("telegram:-5", {"channels": [str(n) for n in range(1, 102)]}, "invalid_request"),
    ("telegram:-5", {"colour": "red"}, "invalid_request"),
    ("telegram:-5", {"chat": "telegram:-6", "emoji": "👍"}, "invalid_chat"),
])
async def test_bad_settings_are_400_and_change_nothing(bot, engine, chat, body, code):
    await bot.call("PUT", "/bot/chats/telegram:-5", 200, json={"emoji": "🔥"})
    assert await bot.error("PUT", f"/bot/chats/{chat}", 400,
                           json={"channels": ["1"], **body}) == code
    kept = await bot.call("GET", "/bot/chats/telegram:-5", 200)
    assert (kept["emoji"], kept["channels"]) == ("🔥", [])
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(chat_settings)) == 1


async def test_chat_settings_are_the_bot_s_own_errand(client, bot, sign_up, engine):
    ann = await sign_up("ann")
    await link(engine, ann.id, "telegram:42")
    for method, body in (("GET", None), ("PUT", {"emoji": "👍"})):
        path = "/bot/chats/telegram:-1"
        assert await bot.acting_for("telegram:42").error(
            method, path, 403, json=body) == "insufficient_scope"
        assert await Caller(client, ann.auth).error(method, path, 403,
                                                    json=body) == "insufficient_scope"
        assert await Caller(client, {}).error(method, path, 401, json=body) == "unauthorized"
    assert (await bot.call("GET", "/bot/chats/telegram:-1", 200))["emoji"] is None


# --- /me received, /bot/waiting ---------------------------------------------------------------

async def test_me_tells_what_the_member_received_this_month(bot, sign_up, engine):
    ann, bob, cid = [await sign_up(h) for h in ("ann", "bob", "cid")]
    await link(engine, ann.id, "telegram:1")
    me = await ann.call("GET", "/me", status=200)
    assert me["received"] == {"flattrs": 0, "members": 0}
    assert {"member", "balances", "budget", "minimum_budget", "period", "flattr_count",
            "funded", "estimated_share"} <= set(me)
    for giver in (bob, cid):
        for post in (1, 2):
            await giver.call("POST", "/flattrs", status=201, json={"thing": f"telegram:-9/{post}"})
    await link(engine, bob.id, "telegram:2")
    await bot.acting_for("telegram:2").call("POST", "/flattrs", 201, json={
        "thing": "telegram:-9/3", "author": "telegram:1"})
    await bob.call("POST", "/flattrs", status=200, json={"thing": "telegram:-9/3"})  # again
    # The posts are ann's once the bot names her as their author.
    for post in (1, 2):
        await bot.acting_for("telegram:2").call("POST", "/flattrs", 200, json={
            "thing": f"telegram:-9/{post}", "author": "telegram:1"})
    assert (await ann.call("GET", "/me", status=200))["received"] == {"flattrs": 5,
                                                                      "members": 2}
    assert (await bot.acting_for("telegram:1").call("GET", "/me", 200))["received"] == {
        "flattrs": 5, "members": 2}
    assert (await bob.call("GET", "/me", status=200))["received"] == {"flattrs": 0,
                                                                      "members": 0}


async def test_what_waits_for_an_unlinked_author(bot, sign_up, engine):
    ann, bob = [await sign_up(h) for h in ("ann", "bob")]
    await link(engine, ann.id, "telegram:1")
    await link(engine, bob.id, "telegram:2")
    for reactor, post in (("telegram:1", 5), ("telegram:2", 5), ("telegram:1", 6)):
        await bot.acting_for(reactor).call("POST", "/flattrs", 201, json={
            "thing": f"telegram:-100/{post}", "author": "telegram:789"})
    period = str(Period.current())
    assert await bot.call("GET", "/bot/waiting?identity=telegram:789", 200) == {
        "identity": "telegram:789", "period": period, "linked": False, "things": 2,
        "flattrs": 3, "currency": "EUR"}
    assert (await bot.call("GET", "/bot/waiting?identity=discord:789", 200))[
        "things"] == 0
    assert await bot.call("GET", "/bot/waiting?identity=telegram:1", 200) == {
        "identity": "telegram:1", "period": period, "linked": True, "things": 0,
        "flattrs": 0, "currency": "EUR"}
    carl = await sign_up("carl")
    await link(engine, carl.id, "telegram:789")
    linked = await bot.call("GET", "/bot/waiting?identity=telegram:789", 200)
    assert (linked["linked"], linked["things"], linked["flattrs"]) == (True, 0, 0)
    for query in ("", "?identity=telegram:-5", "?identity=x", "?identity=telegram:5&x=1"):
        code = await bot.error("GET", "/bot/waiting" + query, 400)
        assert code in ("invalid_request", "invalid_identity")
    assert await bot.acting_for("telegram:1").error(
        "GET", "/bot/waiting?identity=telegram:789", 403) == "insufficient_scope"


# --- a bot acting for a chat identity, on every route -----------------------------------------

BODIES = {
    "NewMember": {"handle": "zed", "password": "a long password"},
    "AmountBody": {"amount": "3"},
    "NotificationChoice": {"email": True},
    "NewToken": {"handle": "ann", "password": "a long password"},
    "FlattrBody": {"thing": "telegram:-100/1", "author": "telegram:9"},
    "ClaimBody": {"host": "a.example"},
    "SubscriptionBody": {"thing": "telegram:-100/2", "months": 2},
    "OptionalAmountBody": {},
    "BotLink": {"identity": "telegram:5", "code": "ABCD"},
    "BotMember": {"identity": "telegram:5"},
    "ChatSettingsBody": {"emoji": "👍"},
    "OutboxLease": {"platform": "telegram"},
    "OutboxAckMany": {"ids": [1]},
    "OutboxFail": {},
    "AdminCredit": {"handle": "ann", "amount": "1"},
    "AdminSettlement": {"period": "2026-01"},
    "PayoutAccountBody": {"iban": "DE89370400440532013000", "name": "Ann"},
}
QUERIES = {"ThingQuery": "?thing=telegram:-100/1", "WaitingQuery": "?identity=telegram:5",
           "AmountQuery": "?amount=10"}
PATH_VALUES = {"{id}": "999", "{period}": "2026-01", "{chat}": "telegram:-100"}


def requests_of(client) -> list[tuple[object, str, dict | None]]:
    made = []
    for endpoint in client.app[keys.endpoints_key]:
        path = endpoint.path
        for name, value in PATH_VALUES.items():
            path = path.replace(name, value)
        if endpoint.query is not None:
            path += QUERIES.get(endpoint.query.__name__, "")
        body = BODIES[endpoint.body.__name__] if endpoint.body is not None else None
        made.append((endpoint, path, body))
    return made


async def test_a_bot_acting_for_an_identity_gets_a_clear_answer_on_every_route(
    client, bot, sign_up, engine
):
    ann = await sign_up("ann")
    await link(engine, ann.id, "telegram:42")
    acting = bot.acting_for("telegram:42")
    outcomes = {}
    for endpoint, path, body in requests_of(client):
        response = await client.request(endpoint.method, "/api/v1" + path, json=body,
                                        headers=acting.headers)
        answer = await response.json()
        where = f"{endpoint.method} {endpoint.path}"
        assert response.status < 500, (where, answer)
        if response.status >= 400:
            assert response.status in (400, 403, 404, 409, 422), (where, answer)
            outcomes[where] = answer["error"]["code"]
        if endpoint.scope in ("account", "admin", "bot") and not endpoint.chat_user_may:
            assert outcomes.get(where) == "insufficient_scope", (where, answer)
    # What a chat user does through the bot works: their budget is set, the identity the
    # bot acts for may be unlinked (the path's id 1 is not ann's: refused, as any other).
    for where in ("GET /me", "POST /flattrs", "DELETE /flattrs", "GET /flattrs",
                  "GET /things", "GET /identities", "POST /subscriptions", "PUT /me/budget"):
        assert where not in outcomes, (where, outcomes[where])
    assert {where for where, code in outcomes.items() if code == "insufficient_scope"} >= {
        "POST /payouts", "POST /transfers", "POST /link-codes", "GET /tokens", "POST /claims",
        "PUT /me/notifications"}


async def test_a_bot_acting_for_a_chat_user_unlinks_that_identity_and_no_other(
    bot, sign_up, engine
):
    ann = await sign_up("ann")
    await link(engine, ann.id, "telegram:42")
    await link(engine, ann.id, "discord:77")
    acting = bot.acting_for("telegram:42")
    linked = {i["identity"]: i["id"]
              for i in (await acting.call("GET", "/identities", 200))["identities"]}
    assert await acting.error("DELETE", f"/identities/{linked['discord:77']}",
                              403) == "insufficient_scope"
    assert (await acting.call("DELETE", f"/identities/{linked['telegram:42']}",
                              200))["unlinked"] == linked["telegram:42"]
    left = (await bot.acting_for("discord:77").call("GET", "/identities", 200))["identities"]
    assert [i["identity"] for i in left] == ["discord:77"]
    assert await acting.error("GET", "/me", 403) == "identity_not_linked"


@pytest.mark.parametrize(("identity", "status", "code"), [
    ("telegram:43", 403, "identity_not_linked"),
    ("telegram:abc", 400, "invalid_identity"),
    ("", 400, "invalid_identity"),
])
async def test_a_bot_acting_for_an_unknown_or_bad_identity_is_refused_on_every_route(
    client, bot, engine, identity, status, code
):
    acting = bot.acting_for(identity)
    for endpoint, path, body in requests_of(client):
        assert await acting.error(endpoint.method, path, status, json=body) == code
    assert await flattr_count(engine) == 0


async def test_only_a_bot_may_act_for_an_identity(client, sign_up, engine):
    ann = await sign_up("ann")
    await link(engine, ann.id, "telegram:42")
    impostor = Caller(client, {**ann.auth, "Flattr-Identity": "telegram:42"})
    for endpoint, path, body in requests_of(client):
        assert await impostor.error(endpoint.method, path, 403,
                                    json=body) == "insufficient_scope"
