"""Stripe's webhook events, each applied exactly once (by event id), in any order.

The gateway has verified the signature. Here:
- `checkout.session.completed` (paid) and `checkout.session.async_payment_succeeded`
  credit the session's amount, once per session whichever comes (the session is the key),
  for a session this deployment opened: recorded, or sealed by it in its metadata (core/
  funding/stripe.py); any other session of the Stripe account is ignored;
- `checkout.session.expired` and `…async_payment_failed` close an unpaid session;
- `charge.refunded` takes back what Stripe has refunded in all (its running total, kept
  with the checkout, so a late, older event takes nothing more) and
  `charge.dispute.created` the disputed amount, once per dispute; at most what the funding
  credited (the card fee was never the member's), from giving first and then into debt
  (core/funding/reversals.py);
- `charge.dispute.closed` won (or an inquiry closed) brings the disputed money back once,
  to the debt first, then takes what refunds Stripe made meanwhile the dispute left no
  room for; lost changes nothing more. Closed before its `created` came, it first takes
  the dispute (once: `created` then finds it taken), so nothing is credited that was never
  taken;
- a refund or dispute of a payment not credited yet waits, and is applied when it is;
- anything else is recorded as ignored.
"""

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from core.clock import utc_now
from core.dialect import insert_ignoring_conflicts
from core.errors import check
from core.funding.money_in import credit
from core.funding.reversals import reinstate, reverse, reverse_up_to
from core.funding.stripe import NAME, cents, sealed
from core.money import CENT_MICROS, MAX_AMOUNT_MICROS
from core.schema import fundings, members, stripe_checkouts, stripe_events
from core.settings import Settings

MAX_WAITING = 100  # events applied when their payment is credited, at most
# How a closed dispute ended: the money comes back (an inquiry closed had it taken too, when
# it was opened), or it stays taken.
DISPUTE_WON = frozenset({"won", "warning_closed"})
DISPUTE_LOST = frozenset({"lost"})


@dataclass(frozen=True)
class Applied:
    state: str  # done, ignored, waiting
    note: str
    waiting_for: str | None = None


@dataclass(frozen=True)
class Received:
    event_id: str
    state: str
    note: str | None
    replayed: bool


async def receive_event(conn: AsyncConnection, event: dict[str, Any], settings: Settings,
                        now: datetime | None = None) -> Received:
    """Apply a verified event once; a second delivery of it changes nothing."""
    now = now or utc_now()
    event_id, kind = str(event["id"]), str(event["type"])
    inserted = await conn.execute(
        insert_ignoring_conflicts(conn, stripe_events, ["event_id"])
        .values(event_id=event_id, type=kind[:100], state="ignored", received_at=now)
        .returning(stripe_events.c.event_id)
    )
    if inserted.scalar() is None:
        row = (await conn.execute(select(stripe_events.c.state, stripe_events.c.note)
                                  .where(stripe_events.c.event_id == event_id))).one()
        return Received(event_id, row.state, row.note, replayed=True)
    applied = await _apply(conn, event, settings, now)
    await _record(conn, event_id, applied, event, now)
    return Received(event_id, applied.state, applied.note, replayed=False)


async def _record(conn: AsyncConnection, event_id: str, applied: Applied, event: dict,
                  now: datetime) -> None:
    waiting = applied.state == "waiting"
    await conn.execute(
        update(stripe_events).where(stripe_events.c.event_id == event_id).values(
            state=applied.state, note=applied.note[:200], waiting_for=applied.waiting_for,
            payload=json.dumps(event) if waiting else None, done_at=None if waiting else now,
        )
    )


async def _apply(conn: AsyncConnection, event: dict, settings: Settings, now: datetime) -> Applied:
    kind = event["type"]
    thing = event["data"]["object"]
    if kind in ("checkout.session.completed", "checkout.session.async_payment_succeeded"):
        return await _session_paid(conn, thing, settings, now)
    if kind in ("checkout.session.expired", "checkout.session.async_payment_failed"):
        return await _session_closed(conn, thing)
    if kind == "charge.refunded":
        return await _refunded(conn, event["id"], thing, settings, now)
    if kind == "charge.dispute.created":
        return await _disputed(conn, thing, settings, now)
    if kind == "charge.dispute.closed":
        return await _dispute_closed(conn, event["id"], thing, settings, now)
    return Applied("ignored", f"{kind[:60]} is not an event Flattr acts on")


async def _session_paid(conn: AsyncConnection, session: dict, settings: Settings,
                        now: datetime) -> Applied:
    if session.get("mode") != "payment" or session.get("payment_status") != "paid":
        return Applied("ignored", "the session is not paid (yet)")
    checkout = await _checkout(conn, session, settings)
    if checkout is None:
        return Applied("ignored", "not a checkout of this deployment")
    if checkout.status == "paid":
        return Applied("done", "already credited")
    expected = cents(checkout.amount_micros + checkout.fee_micros)
    if (str(session.get("currency", "")).upper() != settings.currency
            or session.get("amount_total") != expected):
        return Applied("ignored", f"paid {session.get('amount_total')} "
                                  f"{session.get('currency')}, not {expected}: left to an admin")
    recorded = await credit(conn, checkout.member_id, checkout.amount_micros,
                            idempotency_key=checkout.session_id, source=NAME,
                            memo=f"Stripe Checkout {checkout.session_id}"[:200], now=now)
    funding_id = await conn.scalar(
        select(fundings.c.id).where(fundings.c.transaction_id == recorded.transaction_id))
    payment = session.get("payment_intent")
    await conn.execute(
        update(stripe_checkouts).where(stripe_checkouts.c.session_id == checkout.session_id)
        .values(status="paid", funding_id=funding_id, completed_at=now,
                payment_intent=str(payment) if payment else None)
    )
    if payment:
        await _apply_waiting(conn, str(payment), settings, now)
    return Applied("done", "credited")


async def _checkout(conn: AsyncConnection, session: dict, settings: Settings):
    """The checkout of a session: recorded when it was opened or, should the event come
    before that record (or the record have failed), from the metadata this deployment gave
    it, when sealed by this deployment (core/funding/stripe.py) for a member it knows.
    None for any other session: another deployment's on the same Stripe account, or one
    with metadata made up."""
    query = select(stripe_checkouts).where(stripe_checkouts.c.session_id == session["id"])
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    if row is not None:
        return row
    metadata = session.get("metadata") or {}
    try:
        member_id = int(metadata["flattr_member_id"])
        amount = int(metadata["flattr_amount_micros"])
        fee = int(session["amount_total"]) * CENT_MICROS - amount
        mark = str(metadata["flattr_seal"])
    except (KeyError, TypeError, ValueError):
        return None
    if not (sealed(settings.stripe_webhook_secret, member_id, amount, mark)
            and 0 < member_id < 2**63 and 0 < amount <= MAX_AMOUNT_MICROS and fee >= 0):
        return None
    if await conn.scalar(select(members.c.id).where(members.c.id == member_id)) is None:
        return None
    await conn.execute(
        insert_ignoring_conflicts(conn, stripe_checkouts, ["session_id"]).values(
            session_id=session["id"], member_id=member_id, amount_micros=amount,
            fee_micros=fee, status="open", created_at=utc_now()))
    return (await conn.execute(query)).first()


async def _session_closed(conn: AsyncConnection, session: dict) -> Applied:
    closed = await conn.execute(
        update(stripe_checkouts)
        .where(stripe_checkouts.c.session_id == session["id"],
               stripe_checkouts.c.status == "open")
        .values(status="expired")
    )
    return Applied("done" if closed.rowcount else "ignored",
                   "closed unpaid" if closed.rowcount else "no open checkout")


async def _refunded(conn: AsyncConnection, event_id: str, charge: dict, settings: Settings,
                    now: datetime) -> Applied:
    checkout = await _paid_checkout_of(conn, charge, settings)
    if isinstance(checkout, Applied):
        return checkout
    refunded = min(int(charge.get("amount_refunded") or 0) * CENT_MICROS,
                   checkout.amount_micros)
    # The largest total told is kept (the row stays locked until this transaction ends);
    # what was refunded so far is read under the member's money lock, in `reverse_up_to`:
    # two refund events applied at once take their larger total, not both.
    await conn.execute(
        update(stripe_checkouts)
        .where(stripe_checkouts.c.session_id == checkout.session_id,
               stripe_checkouts.c.refunded_micros < refunded)
        .values(refunded_micros=refunded)
    )
    return await _refund_up_to_total(conn, checkout.session_id, event_id, now)


async def _refund_up_to_total(conn: AsyncConnection, session_id: str, reference: str,
                              now: datetime) -> Applied:
    """Refunds take back the largest total Stripe told, as far as the funding has it."""
    checkout = (await conn.execute(select(stripe_checkouts).where(
        stripe_checkouts.c.session_id == session_id))).one()
    made = await reverse_up_to(conn, checkout.funding_id, checkout.refunded_micros,
                               kind="refund", reference=reference, now=now)
    return Applied("done", f"took back {made.amount_micros} micros" if made else
                   "refunded already")


async def _dispute_closed(conn: AsyncConnection, event_id: str, dispute: dict,
                          settings: Settings, now: datetime) -> Applied:
    status = str(dispute.get("status"))
    if status not in DISPUTE_WON | DISPUTE_LOST:
        return Applied("ignored", f"a dispute closed {status[:40]}")
    # The dispute's money is taken once, by whichever of its events comes first.
    taken = await _disputed(conn, dispute, settings, now)
    if taken.state != "done" or status in DISPUTE_LOST:
        return taken
    made = await reinstate(conn, "dispute", str(dispute["id"]), now)
    if made is None:
        return Applied("done", "the dispute took nothing to bring back")
    checkout = await _paid_checkout_of(conn, dispute, settings)
    check(not isinstance(checkout, Applied), "a disputed payment is no longer paid")
    # A refund Stripe made while the dispute held the money could take only what was left.
    await _refund_up_to_total(conn, checkout.session_id, event_id, now)
    return Applied("done", f"dispute {status}: {made.amount_micros} micros back")


async def _disputed(conn: AsyncConnection, dispute: dict, settings: Settings,
                    now: datetime) -> Applied:
    checkout = await _paid_checkout_of(conn, dispute, settings)
    if isinstance(checkout, Applied):
        return checkout
    amount = min(int(dispute.get("amount") or 0) * CENT_MICROS, checkout.amount_micros)
    if amount <= 0:
        return Applied("ignored", "a dispute of nothing")
    return await _take_back(conn, checkout, amount, "dispute", str(dispute["id"]), now)


async def _paid_checkout_of(conn: AsyncConnection, thing: dict, settings: Settings):
    """The paid checkout a charge or a dispute is about, or why there is none to act on."""
    if str(thing.get("currency", "")).upper() != settings.currency:
        return Applied("ignored", "another currency than the deployment's")
    payment = thing.get("payment_intent")
    if not payment:
        return Applied("ignored", "no payment intent: not a Flattr checkout")
    checkout = (await conn.execute(select(stripe_checkouts).where(
        stripe_checkouts.c.payment_intent == str(payment),
        stripe_checkouts.c.status == "paid"))).first()
    if checkout is None:
        return Applied("waiting", "its payment is not credited yet", str(payment)[:255])
    return checkout


async def _take_back(conn: AsyncConnection, checkout, amount: int, kind: str, reference: str,
                     now: datetime) -> Applied:
    made = await reverse(conn, checkout.funding_id, amount, kind=kind, reference=reference,
                         now=now)
    if made is None:
        return Applied("done", "nothing left to take back")
    if made.reinstated_at is not None:
        return Applied("done", "taken and brought back already")
    return Applied("done", f"took back {made.amount_micros} micros")


async def _apply_waiting(conn: AsyncConnection, payment: str, settings: Settings,
                         now: datetime) -> None:
    rows = (await conn.execute(
        select(stripe_events.c.event_id, stripe_events.c.payload)
        .where(stripe_events.c.state == "waiting", stripe_events.c.waiting_for == payment)
        .order_by(stripe_events.c.received_at, stripe_events.c.event_id)
        .limit(MAX_WAITING)
    )).all()
    for row in rows:
        event = json.loads(row.payload)
        applied = await _apply(conn, event, settings, now)
        check(applied.state != "waiting", f"event {row.event_id} waits after its payment was paid")
        await _record(conn, row.event_id, applied, event, now)
