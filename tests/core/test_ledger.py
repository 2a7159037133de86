"""The ledger: balanced, keyed transactions, and balances that cannot be overdrawn."""

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from core import funding, ledger, members
from core.errors import IdempotencyConflict, InsufficientFunds, InvariantBroken
from core.migrate import check as alembic_check
from core.schema import fundings


async def test_credit_is_balanced_and_replayed_by_its_key(engine):
    async with engine.begin() as conn:
        alice = await members.create_member(conn, "alice")
        first = await funding.credit(conn, alice.id, 5_000_000, idempotency_key="k1")
        again = await funding.credit(conn, alice.id, 5_000_000, idempotency_key="k1")
        giving = await ledger.member_account(conn, alice.id, "giving")
        external = await ledger.system_account(conn, "external")
        assert first.created and not again.created
        assert again.transaction_id == first.transaction_id
        assert await ledger.balance(conn, giving) == 5_000_000
        assert await ledger.balance(conn, external) == -5_000_000


async def test_a_credit_names_its_funding_once(engine):
    async with engine.begin() as conn:
        alice = await members.create_member(conn, "alice")
        first = await funding.credit(conn, alice.id, 5_000_000, idempotency_key="k1")
        await funding.credit(conn, alice.id, 5_000_000, idempotency_key="k1")  # a replay
        rows = (await conn.execute(
            select(fundings.c.member_id, fundings.c.source, fundings.c.amount_micros,
                   fundings.c.transaction_id)
        )).all()
    assert [tuple(r) for r in rows] == [(alice.id, "manual", 5_000_000, first.transaction_id)]


async def test_a_reused_key_with_another_amount_is_a_conflict(engine):
    async with engine.begin() as conn:
        alice = await members.create_member(conn, "alice")
        await funding.credit(conn, alice.id, 5_000_000, idempotency_key="k1")
        with pytest.raises(IdempotencyConflict):
            await funding.credit(conn, alice.id, 6_000_000, idempotency_key="k1")


async def test_an_unbalanced_transaction_is_refused_before_it_is_written(engine):
    async with engine.begin() as conn:
        alice = await members.create_member(conn, "alice")
        giving = await ledger.member_account(conn, alice.id, "giving")
        with pytest.raises(InvariantBroken):
            await ledger.record(
                conn, key="bad", kind="test", entries=[ledger.Posting(giving, 1)]
            )


async def test_overdraft_is_refused_and_nothing_is_written(engine):
    async with engine.begin() as conn:
        alice = await members.create_member(conn, "alice")
        await funding.credit(conn, alice.id, 1_000_000, idempotency_key="k1")
    with pytest.raises(InsufficientFunds):
        async with engine.begin() as conn:
            await funding.transfer_revenue_to_giving(conn, alice.id, 1, idempotency_key="t1")
    async with engine.connect() as conn:
        count = await conn.scalar(text("SELECT COUNT(*) FROM ledger_transactions"))
    assert count == 1


async def test_the_database_itself_refuses_a_negative_giving_balance(engine):
    async with engine.begin() as conn:
        await members.create_member(conn, "alice")
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(
                text("UPDATE accounts SET balance_micros = -1 WHERE kind = 'giving'")
            )


async def test_postings_of_zero_are_refused_by_the_database(engine):
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(
                text("INSERT INTO ledger_transactions (key, kind, created_at) "
                     "VALUES ('z', 'test', CURRENT_TIMESTAMP)")
            )
            await conn.execute(
                text("INSERT INTO postings (transaction_id, account_id, amount_micros) "
                     "SELECT id, 1, 0 FROM ledger_transactions")
            )


def test_models_and_migrations_do_not_drift(database_url):
    alembic_check(database_url)
