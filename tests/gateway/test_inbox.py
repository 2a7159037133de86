"""The web inbox on each backend: newest first, paged, read and unread, one's own only."""

import pytest
from outbox_messages import message, queue


@pytest.fixture
def limits_store() -> None:
    return None  # in-process: the inbox does not depend on where limits are counted


def periods(count: int) -> list[str]:
    return [f"{2020 + n // 12}-{n % 12 + 1:02d}" for n in range(count)]


async def test_messages_come_newest_first_page_by_page(sign_up, engine):
    eve = await sign_up("eve")
    await queue(engine, [message(eve.id, period) for period in periods(25)])
    seen, cursor, pages = [], None, 0
    while True:
        query = f"/messages?limit=10{'' if cursor is None else f'&before={cursor}'}"
        page = await eve.call("GET", query, status=200)
        assert page["unread"] == 25
        seen += page["messages"]
        pages += 1
        cursor = page["next"]
        if cursor is None:
            break
        assert cursor == page["messages"][-1]["id"]
    assert pages == 3 and [len(p) for p in (seen[:10], seen[10:20], seen[20:])] == [10, 10, 5]
    assert [m["period"] for m in seen] == list(reversed(periods(25)))
    ids = [m["id"] for m in seen]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 25
    first = seen[0]
    assert first["kind"] == "summary" and first["read"] is False
    assert first["data"] == {"period": "2022-01", "charged_micros": 5_000_000, "flattrs": 3}
    assert first["subject"] == "Your Flattr month 2022-01"
    assert first["html"] == "<p>2022-01: 5.00 EUR</p>" and first["created_at"].endswith("Z")
    assert (await eve.call("GET", "/messages", status=200))["messages"] == seen[:20]


async def test_reading_marks_messages_read_and_the_unread_filter_leaves_them_out(sign_up,
                                                                                 engine):
    fay = await sign_up("fay")
    await queue(engine, [message(fay.id, period) for period in periods(4)])
    newest, *older = (await fay.call("GET", "/messages", status=200))["messages"]
    read = await fay.call("POST", f"/messages/{newest['id']}/read", status=200)
    assert read["message"]["id"] == newest["id"] and read["message"]["read"] is True
    assert read["unread"] == 3
    again = await fay.call("POST", f"/messages/{newest['id']}/read", status=200)
    assert again["unread"] == 3
    unread = await fay.call("GET", "/messages?unread=true", status=200)
    assert [m["id"] for m in unread["messages"]] == [m["id"] for m in older]
    assert unread["unread"] == 3 and unread["next"] is None
    everything = await fay.call("GET", "/messages?unread=false", status=200)
    assert [m["read"] for m in everything["messages"]] == [True, False, False, False]
    assert await fay.call("POST", "/messages/read", status=200) == {
        "currency": "EUR", "marked": 3, "unread": 0}
    assert (await fay.call("GET", "/messages?unread=true", status=200))["messages"] == []
    assert (await fay.call("POST", "/messages/read", status=200))["marked"] == 0


async def test_another_member_s_messages_are_not_there(sign_up, engine):
    gus = await sign_up("gus")
    hal = await sign_up("hal")
    await queue(engine, [message(gus.id, "2026-09"), message(hal.id, "2026-10")])
    (own,) = (await hal.call("GET", "/messages", status=200))["messages"]
    (other,) = (await gus.call("GET", "/messages", status=200))["messages"]
    assert own["period"] == "2026-10" and other["period"] == "2026-09"
    refused = await hal.call("POST", f"/messages/{other['id']}/read", status=404)
    assert refused["error"]["code"] == "not_found"
    assert (await hal.call("POST", "/messages/read", status=200))["marked"] == 1
    assert (await gus.call("GET", "/messages", status=200))["unread"] == 1
    assert (await hal.call("POST", "/messages/424242/read", status=404))["error"]["code"] == \
        "not_found"


async def test_an_empty_inbox(sign_up):
    ivy = await sign_up("ivy", scopes=("read",))
    assert await ivy.call("GET", "/messages", status=200) == {
        "currency": "EUR", "messages": [], "unread": 0, "next": None}


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=ten", "before=0",
                                   "before=-3", "unread=maybe", "page=2",
                                   "before=99999999999999999999", "limit=1&limit=2"])
async def test_a_bad_query_is_a_400(sign_up, query):
    jo = await sign_up("jo")
    answer = await jo.call("GET", f"/messages?{query}", status=400)
    assert answer["error"]["code"] == "invalid_request"


async def test_the_inbox_needs_a_token(client):
    response = await client.get("/api/v1/messages")
    assert response.status == 401
