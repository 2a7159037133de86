"""SEPA payout batches: one pain.001 file of the payouts due, and the bank's answer to it."""

import asyncio
import os
from pathlib import Path

import pytest
import sepaxml
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from lxml import etree

from core import funding, ledger, members, payouts
from core.checks import run_checks
from core.db import create_engine
from core.errors import InvalidBankAccount, InvalidState, NotFound, PayoutWithTheBank
from core.money import CENT_MICROS
from core.money import parse_amount as eur
from core.payout_accounts import payout_account, set_payout_account
from core.payout_batches import answer_batch, make_batch, unsent_without_account
from core.payout_methods.sepa import Sepa, bank_account
from core.settings import Settings
from world import World

PLATFORM = {"sepa_name": "Flattr Platform", "sepa_iban": "DE89 3704 0044 0532 0130 00"}
IBANS = ("FR1420041010050500013M02606", "NL91ABNA0417164300", "DE75512108001245126199")


def pain001_schema(name: str) -> etree.XMLSchema:
    path = Path(sepaxml.__file__).parent / "schemas" / f"{name}.xsd"
    return etree.XMLSchema(etree.parse(str(path)))


async def creators_with_payouts(world: World, *handles: str) -> list[int]:
    """Creators whose 18 EUR of revenue each, from a real settlement, is asked for."""
    for handle in handles:
        await world.member(f"{handle}-fan", credit="20", budget="20")
        await world.member(handle, credit="2", budget="2")
        await world.claim(handle, f"{handle}.example")
        await world.flattr(f"{handle}-fan", f"https://{handle}.example/", "2026-01")
        await world.flattr(handle, "https://else.example/", "2026-01")
    await world.settle("2026-01")
    async with world.engine.begin() as conn:
        return [(await payouts.request_payout(conn, world.ids[h], world.settings)).id
                for h in handles]


async def creator_with_a_payout(world: World) -> int:
    return (await creators_with_payouts(world, "hal"))[0]


@pytest.mark.parametrize("schema", ["pain.001.001.09", "pain.001.001.03"])
async def test_a_batch_pays_each_payout_once_in_a_file_the_schema_accepts(world: World, schema):
    sepa = Sepa(Settings(**PLATFORM, sepa_schema=schema))
    payout_id = await creator_with_a_payout(world)
    async with world.engine.begin() as conn:
        await set_payout_account(conn, world.ids["hal"], IBANS[0], "  Hal   Écrivain ")
        batch = await make_batch(conn, sepa)
    assert pain001_schema(schema).validate(etree.fromstring(batch.document))
    read = sepa.read(batch.document)
    assert read.message_id == batch.message_id
    assert [(x.payout_id, x.amount_micros, x.account.iban) for x in read.lines] == [
        (payout_id, eur("18"), IBANS[0])]
    assert b">18.00</InstdAmt>" in batch.document  # whole cents
    assert await world.system_balance("payouts_sent") == eur("18")
    assert await world.violations() == {}

    async with world.engine.begin() as conn:  # run again: nothing is due, nothing is paid
        assert await make_batch(conn, sepa) is None
    async with world.engine.begin() as conn:
        answered = await answer_batch(conn, sepa, batch.document, "paid")
    assert [(a.payout.status, a.changed) for a in answered] == [("paid", True)]
    async with world.engine.begin() as conn:  # the same answer again changes nothing
        again = await answer_batch(conn, sepa, batch.document, "paid")
        assert [a.changed for a in again] == [False]
        with pytest.raises(InvalidState):  # a paid payout cannot be rejected by name
            await answer_batch(conn, sepa, batch.document, "failed", only=frozenset({payout_id}))
    assert await world.system_balance("payouts_sent") == 0
    assert await world.system_balance("external") == -eur("22") + eur("18")
    assert await world.violations() == {}


async def test_a_rejected_payout_returns_to_revenue_and_others_wait_for_an_account(
    world: World,
):
    sepa = Sepa(Settings(**PLATFORM))
    _hal, ivy = await creators_with_payouts(world, "hal", "ivy")
    async with world.engine.begin() as conn:
        await set_payout_account(conn, world.ids["hal"], IBANS[1], "Hal", "ABNANL2A")
        assert await unsent_without_account(conn) == [ivy]
        batch = await make_batch(conn, sepa)
    assert batch.payout_count == 1
    async with world.engine.begin() as conn:
        answered = await answer_batch(conn, sepa, batch.document, "failed")
    assert answered[0].payout.status == "failed"
    assert (await world.balances("hal"))["revenue"] == eur("18")
    async with world.engine.connect() as conn:
        assert (await payouts.payout_by_id(conn, ivy)).status == "requested"
    assert await world.violations() == {}


async def test_a_file_that_is_not_the_batch_sent_is_refused(world: World):
    sepa = Sepa(Settings(**PLATFORM))
    await creator_with_a_payout(world)
    async with world.engine.begin() as conn:
        await set_payout_account(conn, world.ids["hal"], IBANS[2], "Hal")
        batch = await make_batch(conn, sepa)
    tampered = batch.document.replace(b">18.00<", b">180.00<")
    unknown = batch.document.replace(batch.message_id.encode(), b"FLATTR-20260101-000000000000")
    async with world.engine.begin() as conn:
        with pytest.raises(InvalidState):
            await answer_batch(conn, sepa, tampered, "paid")
        with pytest.raises(NotFound):
            await answer_batch(conn, sepa, unknown, "paid")
        with pytest.raises(InvalidState):
            await answer_batch(conn, sepa, b"<not xml", "paid")
    assert await world.system_balance("payouts_sent") == eur("18")


@pytest.mark.parametrize("iban,name", [
    ("DE89370400440532013001", "Hal"),  # wrong check digits
    ("BR1800360305000010009795493C1", "Hal"),  # valid, but outside SEPA
    ("DE89370400440532013000", ""),
    ("DE89370400440532013000", "x" * 71),
])
async def test_bad_bank_accounts_are_refused_and_change_nothing(world: World, iban, name):
    hal = await world.member("hal")
    async with world.engine.begin() as conn:
        with pytest.raises(InvalidBankAccount):
            await set_payout_account(conn, hal, iban, name)
        assert await payout_account(conn, hal) is None


# --- Random batches and answers against a model -------------------------------------------

EXAMPLES = hypothesis_settings(
    max_examples=int(os.environ.get("FLATTR_PROPERTY_EXAMPLES", "10")),
    deadline=None, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
creators = st.lists(
    st.tuples(
        st.integers(10 * 10**6, 40 * 10**6),  # revenue in micros
        st.booleans(),  # has a payout account
        st.sampled_from(["paid", "failed", "rejected alone"]),  # the bank's answer
    ),
    min_size=1, max_size=4,
)


@EXAMPLES
@given(plan=creators, answer_whole_file=st.sampled_from(["paid", "failed"]))
def test_random_batches_pay_and_return_exactly(databases, plan, answer_whole_file):
    asyncio.run(play_batch(databases.new_url(), plan, answer_whole_file))


async def play_batch(url: str, plan: list[tuple], whole: str) -> None:
    sepa = Sepa(Settings(**PLATFORM))
    settings = Settings(database_url=url)
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            fan = (await members.create_member(conn, "fan")).id
            total = sum(revenue for revenue, _, _ in plan)
            await funding.credit(conn, fan, total, idempotency_key="fan")
            # Revenue in short (a settlement's is tested above): the fan's money, given.
            fees = await ledger.system_account(conn, "fees")
            await ledger.record(conn, key="given", kind="test.spend", entries=[
                ledger.Posting(await ledger.member_account(conn, fan, "giving"), -total),
                ledger.Posting(fees, total)])
            ids = []
            for n, (revenue, has_account, _) in enumerate(plan):
                creator = (await members.create_member(conn, f"c{n}")).id
                await ledger.record(conn, key=f"earn{n}", kind="test.earn", entries=[
                    ledger.Posting(fees, -revenue),
                    ledger.Posting(await ledger.member_account(conn, creator, "revenue"),
                                   revenue)])
                payout = await payouts.request_payout(conn, creator, settings)
                assert payout.amount_micros == revenue - revenue % CENT_MICROS
                if has_account:
                    await set_payout_account(conn, creator, IBANS[n % 3], f"Creator {n}")
                ids.append((creator, payout))
            batch = await make_batch(conn, sepa)
        sent = [p.id for (_, p), (_, has, _) in zip(ids, plan, strict=True) if has]
        assert (batch is None) == (not sent)
        if batch is not None:
            alone = frozenset(p.id for (_, p), (_, has, answer) in zip(ids, plan, strict=True)
                              if has and answer == "rejected alone")
            async with engine.begin() as conn:
                if alone:
                    await answer_batch(conn, sepa, batch.document, "failed", only=alone)
                await answer_batch(conn, sepa, batch.document, whole)
        async with engine.connect() as conn:
            paid_out = 0
            for (creator, payout), (revenue, has, answer) in zip(ids, plan, strict=True):
                status = (await payouts.payout_by_id(conn, payout.id)).status
                expected = ("requested" if not has else
                            "failed" if answer == "rejected alone" else whole)
                assert status == expected
                kept = revenue - payout.amount_micros
                if status == "failed":
                    kept = revenue
                paid_out += payout.amount_micros if status == "paid" else 0
                revenue_now = await ledger.balance(
                    conn, await ledger.member_account(conn, creator, "revenue"))
                assert revenue_now == kept
            external = await ledger.balance(conn, await ledger.system_account(conn, "external"))
            assert external == -total + paid_out
            broken = {f.invariant.name: f.violations for f in await run_checks(conn)
                      if not f.holds}
            assert broken == {}
    finally:
        await engine.dispose()


def test_an_iban_is_kept_compact_with_a_tidy_name():
    account = bank_account("de89 3704 0044 0532 0130 00", " Zoë\t Écrivain ", "cobadeffxxx")
    assert (account.iban, account.holder_name, account.bic) == (
        "DE89370400440532013000", "Zoë Écrivain", "COBADEFFXXX")


@given(iban=st.text(max_size=40) | st.from_regex(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{4,30}", fullmatch=True),
       name=st.text(max_size=80), bic=st.none() | st.text(max_size=11))
def test_any_bank_account_text_is_taken_or_refused_plainly(iban, name, bic):
    try:
        account = bank_account(iban, name, bic)
    except InvalidBankAccount:
        return
    assert 1 <= len(account.holder_name) <= 70 and account.iban.isalnum()


@pytest.mark.parametrize("outcome", ["paid", "failed"])
async def test_only_the_banks_answer_resolves_a_payout_it_was_sent(world: World, outcome):
    """An admin marks a requested payout; one in a batch the bank has is the bank's to
    answer (`flattr payout confirm|reject FILE`): marking it by hand changes nothing."""
    sepa = Sepa(Settings(**PLATFORM))
    payout_id = await creator_with_a_payout(world)
    async with world.engine.begin() as conn:
        await set_payout_account(conn, world.ids["hal"], IBANS[0], "Hal")
        batch = await make_batch(conn, sepa)
    async with world.engine.begin() as conn:
        with pytest.raises(PayoutWithTheBank, match=r"payout confirm\|reject FILE"):
            await payouts.resolve_payout(conn, payout_id, outcome)
    async with world.engine.connect() as conn:
        assert (await payouts.payout_by_id(conn, payout_id)).status == "sent"
    assert await world.system_balance("payouts_sent") == eur("18")
    assert (await world.balances("hal"))["revenue"] == 0
    assert await world.violations() == {}

    async with world.engine.begin() as conn:
        answered = await answer_batch(conn, sepa, batch.document, outcome)
    assert [(a.payout.status, a.changed) for a in answered] == [(outcome, True)]
    async with world.engine.begin() as conn:  # resolved: the same outcome again is a no-op
        assert (await payouts.resolve_payout(conn, payout_id, outcome)).status == outcome
    assert await world.system_balance("payouts_sent") == 0
    assert await world.violations() == {}
