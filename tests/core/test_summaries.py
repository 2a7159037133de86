"""The monthly summaries, stage 6 of the settlement: one per member who flattred or received,
its numbers those of the member's statement, its text within Discord's limit, its e-mail
escaped, written once however the settlement is run."""

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, text, update

from core import notifications
from core.money import format_money
from core.periods import Period
from core.schema import members, outbox, outbox_deliveries, settlements, things
from core.settings import Settings
from core.settlement import STAGES, notify
from core.settlement import release as release_module
from core.statements import balances_of, statement_of
from core.summaries import TOP_THINGS, Figures, Giving, Receiving, Terms, Top
from core.summary_text import TEXT_LIMIT, SummaryRenderer
from world import World

PUBLIC_URL = "https://flattr.example"


def money(micros: int) -> str:
    return format_money(micros, "EUR")


@pytest.fixture
def world(engine, database_url) -> World:
    return World(engine, Settings(database_url=database_url, redis_url=None,
                                  public_url=PUBLIC_URL))


async def january(world: World) -> None:
    """ann gives to bob (who gives too), to carol (who does not) and to an unclaimed page;
    dave's balance is below the minimum; erin does nothing."""
    await world.member("ann", credit="10", budget="5.000001")
    await world.member("bob", credit="10", budget="2")
    await world.member("carol")
    await world.member("dave", credit="1.5", budget="5")
    await world.member("erin", credit="10", budget="2")
    await world.claim("bob", "bob.example")
    await world.claim("carol", "carol.example")
    for key in ("https://bob.example/post", "https://carol.example/post",
                "https://nobody.example/x?a=1&b=2"):
        await world.flattr("ann", key, "2026-01")
    await world.flattr("bob", "https://carol.example/other", "2026-01")
    await world.flattr("dave", "https://bob.example/dave", "2026-01")


async def summaries(world: World, period: str = "2026-01") -> dict[str, dict]:
    """The summaries of the month by handle: subject, data, text and html."""
    async with world.engine.connect() as conn:
        rows = await conn.execute(
            select(members.c.handle, outbox.c.subject, outbox.c.data, outbox.c.text,
                   outbox.c.html, outbox.c.kind)
            .join(members, members.c.id == outbox.c.member_id)
            .where(outbox.c.period == period)
        )
        found = {}
        for handle, subject, data, body, html, kind in rows:
            assert kind == "summary"
            assert handle not in found, f"{handle} has two summaries of {period}"
            found[handle] = {"subject": subject, "data": json.loads(data), "text": body,
                             "html": html}
        return found


async def outbox_size(world: World) -> int:
    async with world.engine.connect() as conn:
        return await conn.scalar(select(func.count()).select_from(outbox))


async def test_one_summary_for_each_member_who_flattred_or_received(world: World):
    await january(world)
    await world.settle("2026-01")
    found = await summaries(world)
    assert set(found) == {"ann", "bob", "carol", "dave"}  # not erin, who did nothing
    assert all(s["subject"] == "Your Flattr month: January 2026" for s in found.values())
    assert all(s["text"].endswith(f"Your statement: {PUBLIC_URL}/statements/2026-01")
               for s in found.values())
    assert await world.violations() == {}


async def test_the_numbers_are_those_of_the_statement_and_the_balances(world: World):
    await january(world)
    await world.settle("2026-01")
    found = await summaries(world)
    async with world.engine.connect() as conn:
        for handle, summary in found.items():
            member_id = world.ids[handle]
            statement = await statement_of(conn, member_id, Period(2026, 1))
            balances = await balances_of(conn, member_id)
            data, body = summary["data"], summary["text"]
            giving, receiving = data["giving"], data["receiving"]
            if statement["status"] == "not_charged":
                assert giving is None
            else:
                assert giving["status"] == statement["status"]
                assert giving["flattr_count"] == statement["flattr_count"]
                assert giving["charged_micros"] == statement["charged_micros"]
                assert giving["fee_micros"] == statement["fee_micros"]
                assert giving["net_micros"] == statement["net_micros"]
                held = sum(s["amount_micros"] for s in statement["shares"]
                           if s["state"] == "held")
                assert giving["held_micros"] == held
                assert [t["thing"] for t in giving["top"]] == [
                    s["thing"] for s in statement["shares"]][:TOP_THINGS]
            if statement["received_micros"] or balances["held_for_you"]:
                assert receiving["received_micros"] == statement["received_micros"]
                assert receiving["paid_micros"] == statement["received_shares_micros"]
                assert receiving["released_micros"] == statement["received_released_micros"]
                assert receiving["held_micros"] == balances["held_for_you"]
                assert receiving["revenue_micros"] == balances["revenue"]
                assert f"Your revenue balance is {money(balances['revenue'])}" in body
            else:
                assert receiving is None
    ann = found["ann"]
    assert ("You were charged €5.000001. After the fee of €0.50, €4.500001 went to your 3 "
            "flattrs: each was worth about €1.50.") in ann["text"]
    assert ann["data"]["giving"]["each_micros"] == 1_500_000
    assert "• https://bob.example/post (bob)" in ann["text"]
    assert "• https://nobody.example/x?a=1&b=2 (unclaimed)" in ann["text"]
    assert ("€3.00 of it is held for creators who have not claimed their things yet"
            in ann["text"])
    assert "back to you after 6 months if nobody claims it" in ann["text"]
    bob = found["bob"]
    assert "You received €1.500001 from 1 flattr by 1 member." in bob["text"]
    assert "• https://bob.example/post (€1.500001 from 1 flattr)" in bob["text"]
    assert "a payout is possible from €10.00" in bob["text"]
    assert bob["data"]["receiving"]["payout_possible"] is False


async def test_an_unfunded_month_is_a_plain_warning(world: World):
    await january(world)
    await world.settle("2026-01")
    dave = (await summaries(world))["dave"]
    assert dave["data"]["giving"]["status"] == "unfunded"
    assert dave["data"]["giving"]["charged_micros"] == 0
    assert "YOUR MONTH WAS NOT FUNDED" in dave["text"]
    assert ("Nothing was charged and your 1 flattr of January 2026 did not count: your "
            "giving balance (€1.50) was below the minimum of €2.00. Top up your giving "
            "balance to at least €2.00") in dave["text"]


async def test_what_is_held_for_a_creator_who_did_not_give_and_how_to_receive_it(world: World):
    await january(world)
    await world.settle("2026-01")
    carol = (await summaries(world))["carol"]
    assert carol["data"]["giving"] is None
    held = carol["data"]["receiving"]["held_micros"]
    assert held == (await world.balances("carol"))["held_for_you"] > 0
    assert (f"{money(held)} from 2 flattrs of your things is held for you because you were "
            "not an active giver in January 2026. Give at least €2.00 next month to receive "
            "it") in carol["text"]


async def test_released_by_a_claim_returned_after_the_hold_and_a_payout_possible(
    world: World, monkeypatch
):
    await january(world)
    await world.member("fred", credit="30", budget="20")
    await world.flattr("fred", "https://bob.example/fred", "2026-01")
    await world.settle("2026-01")
    # fred gave in January: his claim in March releases what January held for nobody.example
    monkeypatch.setattr(release_module, "utc_now",
                        lambda: datetime(2026, 3, 10, tzinfo=UTC))
    await world.claim("fred", "nobody.example")
    await world.flattr("fred", "https://bob.example/march", "2026-03")
    await world.flattr("carol", "https://bob.example/carol", "2026-03")  # carol unfunded
    await world.settle("2026-03")
    await world.settle("2026-07")  # January's held shares (carol's) go back to their givers

    march = await summaries(world, "2026-03")
    assert set(march) == {"fred", "bob", "carol"}
    fred = march["fred"]["data"]["receiving"]
    async with world.engine.connect() as conn:
        statement = await statement_of(conn, world.ids["fred"], Period(2026, 3))
    assert fred["released_micros"] == statement["received_released_micros"] == 1_500_000
    assert fred["flattrs"] == 1 and fred["givers"] == 1
    assert "€1.50 of it had been held for you until you gave." in march["fred"]["text"]
    assert march["bob"]["data"]["receiving"]["payout_possible"] is True  # fred's January
    assert "you can ask for a payout" in march["bob"]["text"]

    july = await summaries(world, "2026-07")
    assert set(july) == {"ann", "bob"}  # carol's January shares came back to their givers
    assert july["ann"]["data"]["returned_micros"] == 1_500_000
    assert july["ann"]["data"]["giving"] is None
    assert ("€1.50 came back to your giving balance: your shares of 1 flattr that nobody "
            "claimed within 6 months.") in july["ann"]["text"]
    assert july["bob"]["data"]["returned_micros"] == 1_800_000
    assert await world.violations() == {}


async def test_many_flattrs_still_fit_a_discord_message(world: World):
    await world.member("ann", credit="100", budget="50")
    await world.member("bob", credit="10", budget="2")
    await world.claim("bob", "bob.example")
    await world.flattr("bob", "https://ann.example/", "2026-01")
    for number in range(40):
        await world.flattr("ann", f"https://bob.example/{'long-path-' * 150}{number}",
                           "2026-01")
    await world.settle("2026-01")
    found = await summaries(world)
    for handle in ("ann", "bob"):
        assert len(found[handle]["text"]) <= TEXT_LIMIT
    assert f"• and {40 - TOP_THINGS} more" in found["ann"]["text"]
    assert f"• and {40 - TOP_THINGS} more" in found["bob"]["text"]
    assert found["bob"]["data"]["receiving"]["flattrs"] == 40


def test_the_longest_summary_still_fits_a_discord_message():
    """The largest amounts, the longest handle and keys, every section: lists are cut."""
    big = 10**15
    tops = [Top(rank, "https://" + "x" * 2000 + str(rank), "h" * 32, big, 10**6)
            for rank in range(1, TOP_THINGS + 1)]
    member = Figures(
        1, "h" * 32,
        giving=Giving("funded", 10**6, big, big, big, big, big, big, top=tops),
        receiving=Receiving(big, big, 10**6, 10**6, 10**6, big, 10**6, big, top=tops),
        returned_micros=big, returned_flattrs=10**6,
    )
    terms = Terms(Period(2026, 1), "CHF", "https://flattr.example", big, 120, big)
    message = SummaryRenderer(terms).render(member)
    assert len(message.text) <= TEXT_LIMIT
    assert message.text.endswith("Your statement: https://flattr.example/statements/2026-01")
    assert "RECEIVED" in message.text and "1000000000.00 CHF" in message.text
    assert message.text.count("• https://xxx") == 2 * TOP_THINGS
    # A deployment's address of a thousand characters leaves less room: the lists go first.
    long_url = "https://" + "u" * 1000 + ".example"
    terms = Terms(Period(2026, 1), "CHF", long_url, big, 120, big)
    message = SummaryRenderer(terms).render(member)
    assert len(message.text) <= TEXT_LIMIT
    assert message.text.endswith(f"Your statement: {long_url}/statements/2026-01")
    assert "• https://xxx" not in message.text


async def test_the_email_escapes_what_members_chose(world: World):
    await january(world)
    hostile = 'https://nobody.example/"><script>alert(1)</script>'
    async with world.engine.begin() as conn:
        await conn.execute(update(members).where(members.c.id == world.ids["ann"])
                           .values(handle="<img src=x onerror=alert(1)>"))
        await conn.execute(update(things).where(things.c.key.like("https://nobody.example/%"))
                           .values(key=hostile))
    await world.settle("2026-01")
    async with world.engine.connect() as conn:
        html, body = (await conn.execute(
            select(outbox.c.html, outbox.c.text).where(outbox.c.member_id == world.ids["ann"])
        )).one()
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Hi &lt;img src=x onerror=alert(1)&gt;," in html
    assert hostile in body  # the plain text shows it as it is
    # a fragment: the mailer makes the document (worker/mail.py)
    assert html.startswith("<p>") and html.endswith("</a></p>") and "<body" not in html


async def test_settling_again_adds_nothing(world: World):
    await january(world)
    first = await world.settle("2026-01")
    assert first.stages_run == len(STAGES)
    before = await summaries(world)
    again = await world.settle("2026-01")
    assert again.already_settled
    assert await summaries(world) == before
    # Even the stage itself, run again, passes over the summaries written.
    terms = Terms(Period(2026, 1), "EUR", PUBLIC_URL, 2_000_000, 6, 10_000_000)
    async with world.engine.begin() as conn:
        assert await notify.write_summaries(conn, terms, datetime(2026, 2, 2, tzinfo=UTC)) == 4
    assert await outbox_size(world) == 4
    assert await summaries(world) == before


async def test_a_run_killed_while_writing_summaries_resumes_and_writes_each_once(
    world: World, monkeypatch
):
    await january(world)
    render = SummaryRenderer.render
    calls = []

    def fails_once(self, member):
        calls.append(member.member_id)
        if len(calls) == 2:
            raise RuntimeError("killed while rendering")
        return render(self, member)

    monkeypatch.setattr(SummaryRenderer, "render", fails_once)
    with pytest.raises(RuntimeError, match="killed while rendering"):
        await world.settle("2026-01")
    async with world.engine.connect() as conn:
        stage = await conn.scalar(select(settlements.c.stage))
    assert stage == len(STAGES) - 1
    assert await outbox_size(world) == 0

    result = await world.settle("2026-01")
    assert result.stages_run == 1
    assert set(await summaries(world)) == {"ann", "bob", "carol", "dave"}
    assert await outbox_size(world) == 4
    assert await world.violations() == {}


async def test_deliveries_go_to_each_linked_identity_and_to_chosen_email(world: World):
    await january(world)
    await world.link("bob", "telegram:111")
    await world.link("bob", "discord:222")
    async with world.engine.begin() as conn:
        await conn.execute(update(members).where(members.c.id == world.ids["ann"])
                           .values(email="ann@example.com"))
        await notifications.choose(conn, world.ids["ann"], {"email": True})
        await notifications.choose(conn, world.ids["carol"], {"telegram": False})
    await world.link("carol", "telegram:333")
    await world.settle("2026-01")
    async with world.engine.connect() as conn:
        rows = await conn.execute(
            select(members.c.handle, outbox_deliveries.c.channel, outbox_deliveries.c.address,
                   outbox_deliveries.c.state)
            .join(members, members.c.id == outbox_deliveries.c.member_id)
        )
        made = sorted(tuple(row) for row in rows)
        linked = await conn.scalar(text(
            "SELECT COUNT(*) FROM outbox_deliveries d JOIN outbox o ON o.id = d.message_id "
            "WHERE o.member_id = d.member_id AND o.kind = 'summary'"
        ))
    assert made == [("ann", "email", "ann@example.com", "pending"),
                    ("bob", "discord", "discord:222", "pending"),
                    ("bob", "telegram", "telegram:111", "pending")]
    assert linked == 3


async def test_a_budget_given_to_charity_is_told(engine, database_url):
    world = World(engine, Settings(database_url=database_url, redis_url=None,
                                   public_url=PUBLIC_URL, idle_budget="charity"))
    await world.member("ann", credit="10", budget="3")  # flattrs nothing
    await world.member("bob", credit="10", budget="2")
    await world.flattr("bob", "https://x.example/", "2026-01")
    await world.settle("2026-01")
    ann = (await summaries(world))["ann"]
    assert ann["data"]["giving"]["status"] == "idle"
    assert ann["data"]["giving"]["charged_micros"] == 3_000_000
    assert ("You flattred nothing in January 2026, so €3.00 of your budget went to charity."
            in ann["text"])
    assert await world.system_balance("charity") == 3_000_000
