"""E-mail leases run by the clock: a round without --now leases, acknowledges and fails by
the time it is when it does so, not by when the round began; a message whose lease ran out
before the sender got to it is left to whoever leases it next, not sent a second time."""

import asyncio
from datetime import UTC, timedelta

from sqlalchemy import select

from core import members, notifications, outbox
from core.clock import utc_now
from core.schema import outbox_deliveries
from worker.cycle import run_due
from worker.mail import send_email

REFUSED_FOR_NOW = "451 4.3.0 Mailbox busy, try later"


async def mailed_summaries(engine, *handles: str) -> None:
    """A member with e-mail on for each handle, and a summary to each, due now."""
    async with engine.begin() as conn:
        made = [await members.create_member(conn, handle, email=f"{handle}@example.org")
                for handle in handles]
        for member in made:
            await notifications.choose(conn, member.id, {"email": True})
        await outbox.queue_messages(conn, [
            outbox.Message(member.id, "2026-11", "summary", "Your month", {},
                           f"Hello {member.handle}.", f"<p>Hello {member.handle}.</p>")
            for member in made])


async def deliveries(engine) -> dict[str, dict]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(outbox_deliveries))).all()
    return {row.address: dict(row._mapping) for row in rows}


def by_smtp(settings, url: str):
    return settings.model_copy(update={"smtp_url": url, "mail_from": "mail@flattr.test"})


async def test_a_round_by_the_clock_fails_email_by_the_clock_not_by_its_start(
        engine, settings, smtp):
    mailbox, url = smtp
    await mailed_summaries(engine, "ann")
    mailbox.pauses = [1.5]  # the server takes its time, then asks to come back later
    mailbox.refuse = REFUSED_FOR_NOW
    began = utc_now()

    done = await run_due(engine, by_smtp(settings, url))  # no --now: the clock

    assert [d.counts for d in done if d.work == "email"] == [
        {"sent": 0, "retried": 1, "unreachable": 0, "dead": 0}]
    ann = (await deliveries(engine))["ann@example.org"]
    assert (ann["state"], ann["attempts"]) == ("pending", 1)
    # The back-off counts from the refusal, 1.5 s after the round began.
    waits_until = ann["available_at"].replace(tzinfo=UTC)
    assert waits_until >= began + timedelta(seconds=1.5) + outbox.backoff(1)
    assert waits_until <= utc_now() + outbox.backoff(1)


async def test_a_message_whose_lease_ran_out_before_its_turn_is_not_sent_twice(
        engine, settings, smtp):
    mailbox, url = smtp
    settings = by_smtp(settings, url)
    await mailed_summaries(engine, "ann", "bob", "cid")
    mailbox.pauses = [4.0]  # ann's recipient: longer than the first sender's lease of 2 s

    async def second_sender() -> None:  # leases when the first's lease has run out
        await asyncio.sleep(3.0)
        await send_email(engine, settings, lease_seconds=60)

    await asyncio.gather(send_email(engine, settings, lease_seconds=2), second_sender())

    to = [message["To"] for message in mailbox.received]
    # ann's was in flight when its lease ran out: both senders sent it (at least once, as
    # the outbox promises). bob's and cid's were not begun: only the second sender sent them.
    assert sorted(to) == ["ann@example.org", "ann@example.org", "bob@example.org",
                          "cid@example.org"]
    states = await deliveries(engine)
    assert {address: (d["state"], d["attempts"]) for address, d in states.items()} == {
        address: ("sent", 2) for address in to}
