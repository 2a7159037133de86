"""Reminders: from three days before a month ends, once per member and month, to those who
flattred in it and whose giving balance is below their budget."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from core import notifications
from core.periods import Period
from core.reminders import Due, render_reminder
from core.schema import outbox, outbox_deliveries
from worker.cycle import run_due

NOVEMBER_ENDS = datetime(2026, 12, 1, tzinfo=UTC)
OPENS = NOVEMBER_ENDS - timedelta(days=3)


async def reminded(engine) -> dict[int, dict]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(outbox.c.member_id, outbox.c.period, outbox.c.subject, outbox.c.text,
                   outbox.c.html).where(outbox.c.kind == "reminder"))
        return {row.member_id: row._asdict() for row in rows}


def reminders(done) -> list:
    return [d for d in done if d.work == "reminders"]  # October is settled in the round too


async def members_of_a_month(world) -> dict[str, int]:
    ids = {
        "short": await world.member("short", credit="1", budget="5"),  # unfunded
        "partly": await world.member("partly", credit="3", budget="5"),  # gives 3 of 5
        "funded": await world.member("funded", credit="10", budget="5"),
        "idle": await world.member("idle", credit="1", budget="5"),  # flattred nothing
        "nobudget": await world.member("nobudget", credit="1"),
        "nobudget_rich": await world.member("nobudget_rich", credit="3"),
    }
    for handle in ("short", "partly", "funded", "nobudget", "nobudget_rich"):
        await world.flattr(handle, f"https://{handle}.example/a", "2026-11")
    await world.flattr("short", "https://short.example/b", "2026-11")
    await world.flattr("short", "https://other.example/", "2026-10")  # another month's
    return ids


async def test_reminders_go_to_who_flattred_below_their_budget_once_a_month(
        world, engine, settings):
    ids = await members_of_a_month(world)
    assert reminders(await run_due(engine, settings, OPENS - timedelta(seconds=1))) == []
    assert await reminded(engine) == {}

    done = await run_due(engine, settings, OPENS)
    assert [(d.work, d.counts, d.line) for d in reminders(done)] == [
        ("reminders", {"period": "2026-11", "queued": 4}, "reminders 2026-11: 4 queued")]
    messages = await reminded(engine)
    # Without a budget the month is charged nothing, however much is in the balance.
    assert set(messages) == {ids["short"], ids["partly"], ids["nobudget"], ids["nobudget_rich"]}
    short = messages[ids["short"]]
    assert short["period"] == "2026-11"
    assert short["subject"] == "Top up before November 2026 ends"
    assert "You flattred 2 things this month, and your giving balance is €1.00." in short["text"]
    assert "Your budget is €5.00. Top up, or this month goes unfunded" in short["text"]
    assert "November 2026 ends on 30 November (UTC)" in short["text"]
    assert short["text"].endswith("Top up: http://127.0.0.1:8080/me")
    assert '<a href="http://127.0.0.1:8080/me">' in short["html"]
    assert "only €3.00 of it is shared" in messages[ids["partly"]]["text"]
    assert "You have set no monthly budget" in messages[ids["nobudget"]]["text"]

    # Every minute until the month ends, and at its last second: nothing more.
    for later in (OPENS + timedelta(minutes=1), NOVEMBER_ENDS - timedelta(seconds=1)):
        assert await run_due(engine, settings, later) == []
    assert await reminded(engine) == messages


async def test_a_member_reminded_tops_up_and_a_new_one_falls_short(world, engine, settings):
    ids = await members_of_a_month(world)
    await run_due(engine, settings, OPENS)
    await world.member("late", credit="0.50", budget="2")
    await world.flattr("late", "https://late.example/", "2026-11")
    done = await run_due(engine, settings, OPENS + timedelta(days=1))
    assert [d.counts for d in done] == [{"period": "2026-11", "queued": 1}]
    assert set(await reminded(engine)) == {ids["short"], ids["partly"], ids["nobudget"],
                                           ids["nobudget_rich"], world.ids["late"]}


async def test_a_reminder_goes_to_the_chats_unless_reminders_are_off(world, engine, settings):
    ids = await members_of_a_month(world)
    await world.link("short", "telegram:501")
    await world.link("partly", "telegram:502")
    async with engine.begin() as conn:
        await notifications.choose(conn, ids["partly"], {"reminders": False})
    await run_due(engine, settings, OPENS)
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(outbox_deliveries.c.member_id, outbox_deliveries.c.address)
            .join(outbox, outbox.c.id == outbox_deliveries.c.message_id)
            .where(outbox.c.kind == "reminder"))
        assert rows.all() == [(ids["short"], "telegram:501")]
    assert ids["partly"] in await reminded(engine)  # still in the web inbox


def test_a_reminder_escapes_the_handle_in_its_email_and_fits_discord(settings):
    due = Due(member_id=7, handle="<b>eve</b>", flattr_count=1, balance_micros=0,
              budget_micros=2_000_000)
    message = render_reminder(due, Period(2026, 2), settings)
    assert "<b>" not in message.html and "&lt;b&gt;eve&lt;/b&gt;" in message.html
    assert message.text.startswith("Hi <b>eve</b>,")
    assert "You flattred 1 thing this month" in message.text
    assert "February 2026 ends on 28 February (UTC)" in message.text
    assert len(message.text) <= 2000
    assert message.data == {
        "period": "2026-02", "currency": "EUR", "handle": "<b>eve</b>", "flattr_count": 1,
        "balance_micros": 0, "budget_micros": 2_000_000, "minimum_micros": 2_000_000,
        "unfunded": True, "url": "http://127.0.0.1:8080/me"}
