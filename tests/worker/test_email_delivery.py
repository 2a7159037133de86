"""E-mail through a real SMTP server on loopback: a summary arrives as text and HTML; a 4xx
answer is tried again after its back-off, then dead; a 5xx refusal makes the address
unreachable; a server away is tried again later."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from core import funding, members, notifications, outbox
from core.schema import outbox as outbox_table
from core.schema import outbox_deliveries
from services import free_port
from worker.cycle import run_due
from worker.mail import SmtpServer, SmtpUrlInvalid, parse_smtp_url
from world import JOINED

DECEMBER = datetime(2026, 12, 1, 0, 5, tzinfo=UTC)
T0 = datetime(2026, 12, 3, 9, tzinfo=UTC)


def with_smtp(settings, url: str | None):
    return settings.model_copy(update={"smtp_url": url, "mail_from": "Flattr <mail@flattr.test>"})


async def mail_member(engine, handle: str, address: str, *, email_on: bool = True) -> int:
    async with engine.begin() as conn:
        made = await members.create_member(conn, handle, email=address)
        if email_on:
            await notifications.choose(conn, made.id, {"email": True})
    return made.id


async def queue_one(engine, member_id: int, at: datetime = T0) -> None:
    message = outbox.Message(member_id, "2026-11", "summary", "Your month <3",
                             {"n": 1}, "You gave €5.00.\nSee you.", "<p>You gave €5.00.</p>")
    async with engine.begin() as conn:
        await outbox.queue_messages(conn, [message], now=at)


async def the_delivery(engine) -> dict:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(outbox_deliveries))).all()
    assert len(rows) == 1
    return dict(rows[0]._mapping)


def email_done(done) -> dict | None:
    found = [d for d in done if d.work == "email"]
    return found[0].counts if found else None


async def test_a_months_summary_arrives_by_email(world, engine, settings, smtp):
    mailbox, url = smtp
    settings = with_smtp(settings, url)
    ann = world.ids["ann"] = await mail_member(engine, "ann", "ann@example.org")
    async with engine.begin() as conn:
        await members.set_budget(conn, ann, 5_000_000, settings, now=JOINED)
        await funding.credit(conn, ann, 10_000_000, idempotency_key="ann-funds")
    world.ids["cid"] = await mail_member(engine, "cid", "cid@example.org", email_on=False)
    await world.member("bob", credit="3", budget="2")
    await world.claim("bob", "bob.example")
    await world.flattr("ann", "https://bob.example/post", "2026-11")
    await world.flattr("cid", "https://bob.example/post", "2026-11")  # e-mail off

    done = await run_due(engine, settings, DECEMBER)  # settles November, then sends
    assert email_done(done) == {"sent": 1, "retried": 0, "unreachable": 0, "dead": 0}
    assert len(mailbox.received) == 1
    async with engine.connect() as conn:
        summary = (await conn.execute(select(outbox_table).where(
            outbox_table.c.member_id == ann, outbox_table.c.kind == "summary"))).one()
    received = mailbox.received[0]
    assert received["Subject"] == summary.subject
    assert received["To"] == "ann@example.org"
    assert received["From"] == "Flattr <mail@flattr.test>"
    assert mailbox.envelopes == [("mail@flattr.test", ["ann@example.org"])]
    text, html = mailbox.bodies(received)
    assert text.rstrip("\n") == summary.text
    assert summary.html in html and "€4.50" in text  # ann's 5.00 less the fee, to bob
    assert html.count("<html>") == 1 and html.count("<body>") == 1
    assert (await the_delivery(engine))["state"] == "sent"  # the only one: cid's is off

    assert email_done(await run_due(engine, settings, DECEMBER + timedelta(hours=1))) is None
    assert len(mailbox.received) == 1


async def test_a_4xx_answer_is_tried_again_after_its_back_off(engine, settings, smtp):
    mailbox, url = smtp
    settings = with_smtp(settings, url)
    await queue_one(engine, await mail_member(engine, "ann", "ann@example.org"))
    mailbox.refuse = "451 4.3.0 Mailbox busy, try later"

    assert email_done(await run_due(engine, settings, T0)) == {
        "sent": 0, "retried": 1, "unreachable": 0, "dead": 0}
    delivery = await the_delivery(engine)
    assert (delivery["state"], delivery["attempts"]) == ("pending", 1)
    assert "451" in delivery["last_error"]
    wait = outbox.backoff(1)
    assert delivery["available_at"].replace(tzinfo=UTC) == T0 + wait

    assert email_done(await run_due(engine, settings, T0 + wait - timedelta(seconds=1))) is None
    assert mailbox.refused == 1  # not asked again before its time
    mailbox.refuse = None
    assert email_done(await run_due(engine, settings, T0 + wait))["sent"] == 1
    assert len(mailbox.received) == 1
    assert (await the_delivery(engine))["state"] == "sent"


async def test_a_delivery_refused_with_4xx_at_every_try_is_dead(engine, settings, smtp):
    mailbox, url = smtp
    settings = with_smtp(settings, url)
    await queue_one(engine, await mail_member(engine, "ann", "ann@example.org"))
    mailbox.refuse = "421 4.7.0 Too many connections"
    at = T0
    for attempt in range(1, outbox.MAX_ATTEMPTS + 1):
        counts = email_done(await run_due(engine, settings, at))
        assert counts["retried" if attempt < outbox.MAX_ATTEMPTS else "dead"] == 1
        at += outbox.backoff(attempt)
    assert (await the_delivery(engine))["state"] == "dead"
    assert email_done(await run_due(engine, settings, at + timedelta(days=1))) is None
    assert mailbox.refused == outbox.MAX_ATTEMPTS


async def test_a_5xx_refusal_makes_the_address_unreachable(engine, settings, smtp):
    mailbox, url = smtp
    settings = with_smtp(settings, url)
    ann = await mail_member(engine, "ann", "ann@example.org")
    await queue_one(engine, ann)
    mailbox.refuse = "550 5.1.1 No such user here"

    assert email_done(await run_due(engine, settings, T0)) == {
        "sent": 0, "retried": 0, "unreachable": 1, "dead": 0}
    delivery = await the_delivery(engine)
    assert delivery["state"] == "unreachable" and "550" in delivery["last_error"]
    mailbox.refuse = None
    assert email_done(await run_due(engine, settings, T0 + timedelta(days=1))) is None
    assert mailbox.received == []
    async with engine.connect() as conn:  # the message stays in the web inbox
        assert await conn.scalar(select(outbox_table.c.id).where(
            outbox_table.c.member_id == ann)) is not None


async def test_a_server_away_is_tried_again_later(engine, settings):
    settings = with_smtp(settings, f"smtp://127.0.0.1:{free_port()}")  # nobody listens
    await queue_one(engine, await mail_member(engine, "ann", "ann@example.org"))
    assert email_done(await run_due(engine, settings, T0))["retried"] == 1
    delivery = await the_delivery(engine)
    assert (delivery["state"], delivery["attempts"]) == ("pending", 1)
    assert delivery["last_error"].startswith("connect:")


async def test_without_a_server_no_email_is_leased(engine, settings):
    await queue_one(engine, await mail_member(engine, "ann", "ann@example.org"))
    assert email_done(await run_due(engine, with_smtp(settings, None), T0)) is None
    delivery = await the_delivery(engine)
    assert (delivery["state"], delivery["attempts"]) == ("pending", 0)


async def test_the_worker_logs_in_with_the_urls_credentials(engine, settings, smtp):
    mailbox, url = smtp
    settings = with_smtp(settings, url.replace("smtp://", "smtp://flattr%40host:p%3Ass@"))
    await queue_one(engine, await mail_member(engine, "ann", "ann@example.org"))
    assert email_done(await run_due(engine, settings, T0))["sent"] == 1
    assert mailbox.logins == [("flattr@host", "p:ss")]


def test_smtp_urls():
    assert parse_smtp_url("smtp://mail.example:2525") == SmtpServer("mail.example", 2525, False)
    assert parse_smtp_url("smtps://u:p@mail.example") == SmtpServer(
        "mail.example", 465, True, "u", "p")
    assert parse_smtp_url("smtp://mail.example").port == 25
    for bad in ("http://mail.example", "smtp://", "smtp://mail.example:99999"):
        with pytest.raises(SmtpUrlInvalid):
            parse_smtp_url(bad)
