"""Money in and taken back: fundings, refunds and disputes, and the debts they leave.

A property test plays random fundings, spendings, refunds, disputes and replays against a
model in Python on each backend; scenarios walk a real settlement into a debt and out.
"""

import asyncio
import itertools
import os
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from core import flattrs, funding, ledger, members
from core.checks import run_checks
from core.clock import utc_now
from core.db import create_engine
from core.errors import IdempotencyConflict, InDebt
from core.flattr_batch import FlattrRequest, flattr_many
from core.funding.reversals import split_reversal
from core.money import parse_amount as eur
from core.periods import Period
from core.schema import flattrs as flattrs_table
from core.schema import fundings
from core.thing_keys import parse_thing_key
from world import World

EXAMPLES = hypothesis_settings(
    max_examples=int(os.environ.get("FLATTR_PROPERTY_EXAMPLES", "25")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
_keys = itertools.count(1)


@given(amount=st.integers(0, 10**15), giving=st.integers(0, 10**15))
def test_a_reversal_takes_what_giving_holds_and_owes_the_rest(amount: int, giving: int):
    from_giving, into_debt = split_reversal(amount, giving)
    assert from_giving + into_debt == amount
    assert 0 <= from_giving <= giving
    assert into_debt >= 0
    assert into_debt == 0 or from_giving == giving  # a debt only once giving is empty


# --- Random histories against a model -----------------------------------------------------

MEMBERS = ("ann", "bob")
amounts = st.integers(1, 50).map(lambda cents: cents * 100_000) | st.integers(1, 5_000_000)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("fund"), st.sampled_from(MEMBERS), amounts),
        st.tuples(st.just("spend"), st.sampled_from(MEMBERS), amounts),
        st.tuples(st.sampled_from(["refund", "dispute"]), st.integers(0, 7), amounts),
        st.tuples(st.just("replay"), st.integers(0, 30), st.just(0)),
    ),
    min_size=1, max_size=14,
)


@dataclass
class Model:
    giving: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MEMBERS, 0))
    debt: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MEMBERS, 0))
    inside: int = 0  # what external says is inside: fundings - reversals
    fundings: list[tuple[str, int, int]] = field(default_factory=list)  # member, id, left
    done: list[tuple] = field(default_factory=list)  # operations that moved money


@EXAMPLES
@given(ops=operations)
def test_random_fundings_and_reversals_match_a_model(databases, ops):
    # Every history starts with money given away, so that reversals often leave debts.
    start = [("fund", "ann", eur("3")), ("spend", "ann", eur("2"))]
    asyncio.run(play(databases.new_url(), start + ops))


async def play(url: str, ops: list[tuple]) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            ids = {h: (await members.create_member(conn, h)).id for h in MEMBERS}
        model = Model()
        for op in ops:
            async with engine.begin() as conn:
                await apply(conn, ids, model, op)
            async with engine.connect() as conn:
                for handle, member_id in ids.items():
                    giving = await ledger.balance(
                        conn, await ledger.member_account(conn, member_id, "giving"))
                    assert giving == model.giving[handle], (op, handle)
                    assert await funding.owed_by(conn, member_id) == model.debt[handle]
                external = await ledger.balance(conn, await ledger.system_account(conn,
                                                                                  "external"))
                assert -external == model.inside
                broken = {f.invariant.name: f.violations for f in await run_checks(conn)
                          if not f.holds}
                assert broken == {}, op
        async with engine.begin() as conn:
            for handle, member_id in ids.items():
                if model.debt[handle]:
                    with pytest.raises(InDebt):
                        await flattrs.flattr(conn, member_id, "https://x.example/")
                else:
                    await flattrs.flattr(conn, member_id, "https://x.example/")
    finally:
        await engine.dispose()


async def apply(conn, ids: dict[str, int], model: Model, op: tuple, replay: bool = False):
    kind, who, amount = op[:3]
    if kind == "replay":
        if model.done:
            await apply(conn, ids, model, model.done[who % len(model.done)], replay=True)
        return
    if kind == "fund":
        key = op[3] if replay else f"k{next(_keys)}"
        recorded = await funding.credit(conn, ids[who], amount, idempotency_key=key)
        assert recorded.created is not replay
        if replay:
            return
        funding_id = await conn.scalar(select(fundings.c.id).where(
            fundings.c.transaction_id == recorded.transaction_id))
        repaid = min(model.debt[who], amount)
        model.debt[who] -= repaid
        model.giving[who] += amount - repaid
        model.inside += amount
        model.fundings.append((who, funding_id, amount))
        model.done.append((kind, who, amount, key))
    elif kind == "spend":  # a month's charge, in short: giving given away to `fees`
        spent = min(amount, model.giving[who])
        if spent == 0:
            return
        await ledger.record(conn, key=f"spend{next(_keys)}", kind="test.spend", entries=[
            ledger.Posting(await ledger.member_account(conn, ids[who], "giving"), -spent),
            ledger.Posting(await ledger.system_account(conn, "fees"), spent)])
        model.giving[who] -= spent
    else:  # refund or dispute of a funding
        if not model.fundings:
            return
        index = who % len(model.fundings)
        member, funding_id, left = model.fundings[index]
        reference = op[3] if replay else f"r{next(_keys)}"
        made = await funding.reverse(conn, funding_id, amount, kind=kind, reference=reference)
        if replay:
            return
        taken = min(amount, left)
        if taken == 0:
            assert made is None
            return
        assert made.amount_micros == taken
        from_giving, into_debt = split_reversal(taken, model.giving[member])
        assert made.debt_micros == into_debt
        model.giving[member] -= from_giving
        model.debt[member] += into_debt
        model.inside -= taken
        model.fundings[index] = (member, funding_id, left - taken)
        model.done.append((kind, index, amount, reference))


# --- Scenarios ------------------------------------------------------------------------------


async def test_a_refund_after_the_money_was_given_leaves_a_debt_that_blocks_flattrs(
    world: World,
):
    ann = await world.member("ann", budget="10")
    await world.member("cat")
    await world.claim("cat", "cat.example")
    async with world.engine.begin() as conn:
        await funding.credit(conn, ann, eur("10"), idempotency_key="card-1")
        funding_id = await conn.scalar(select(fundings.c.id).where(fundings.c.member_id == ann))
    await world.flattr("ann", "https://cat.example/", "2026-01")
    await world.settle("2026-01")
    assert (await world.balances("ann"))["giving"] == 0

    async with world.engine.begin() as conn:
        made = await funding.reverse(conn, funding_id, eur("10"), kind="refund",
                                     reference="evt_1")
    assert (made.amount_micros, made.debt_micros) == (eur("10"), eur("10"))
    balances = await world.balances("ann")
    assert balances["giving"] == 0 and balances["debt"] == -eur("10")
    assert await world.violations() == {}
    with pytest.raises(InDebt):
        await world.flattr("ann", "https://cat.example/again", Period.current().__str__())

    async with world.engine.begin() as conn:  # the same refund again takes nothing more
        again = await funding.reverse(conn, funding_id, eur("10"), kind="refund",
                                      reference="evt_1")
        assert again == made
        assert await funding.reverse(conn, funding_id, eur("1"), kind="dispute",
                                     reference="dp_1") is None  # nothing left to take

    async with world.engine.begin() as conn:  # a new funding repays the debt first
        await funding.credit(conn, ann, eur("12"), idempotency_key="card-2")
    balances = await world.balances("ann")
    assert balances["giving"] == eur("2") and balances["debt"] == 0
    await world.flattr("ann", "https://cat.example/again", str(Period.current()))
    assert await world.system_balance("external") == -(eur("10") - eur("10") + eur("12"))
    assert await world.violations() == {}


async def test_a_funding_key_used_again_for_another_amount_is_refused(world: World):
    ann = await world.member("ann")
    async with world.engine.begin() as conn:
        await funding.credit(conn, ann, eur("5"), idempotency_key="same")
    async with world.engine.begin() as conn:
        with pytest.raises(IdempotencyConflict):
            await funding.credit(conn, ann, eur("6"), idempotency_key="same")
    assert (await world.balances("ann"))["giving"] == eur("5")


async def test_the_click_paths_batch_refuses_only_the_member_in_debt(world: World):
    ann = await world.member("ann")
    await world.member("bob")
    async with world.engine.begin() as conn:
        await funding.credit(conn, ann, eur("5"), idempotency_key="card")
        funding_id = await conn.scalar(select(fundings.c.id).where(fundings.c.member_id == ann))
        await ledger.record(conn, key="given", kind="test.spend", entries=[
            ledger.Posting(await ledger.member_account(conn, ann, "giving"), -eur("5")),
            ledger.Posting(await ledger.system_account(conn, "fees"), eur("5"))])
        await funding.reverse(conn, funding_id, eur("5"), kind="dispute", reference="dp_9")
    requests = [FlattrRequest(world.ids[h], parse_thing_key(f"https://{h}.example/p"), "web")
                for h in ("ann", "bob", "ann")]
    async with world.engine.connect() as conn:
        outcomes = await flattr_many(conn, requests, utc_now())
    assert [type(o).__name__ for o in outcomes] == ["InDebt", "Flattred", "InDebt"]
    async with world.engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(flattrs_table)) == 1
