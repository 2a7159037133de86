"""Several workers on one PostgreSQL, as processes of their own: a month is settled by one of
them, once; a worker killed (SIGKILL) inside a stage and started again finishes the month,
and nothing is done twice."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from core.checks import run_checks
from core.locks import PERIOD_FLATTRS_LOCK, period_lock_key
from core.periods import Period
from core.schema import charges, ledger_transactions, outbox, settlements

pytestmark = pytest.mark.postgres_only

FLATTR = str(Path(sys.executable).parent / "flattr")
NOVEMBER_SETTLES = "2026-12-01T00:30:00Z"
DECEMBER_SETTLES = "2027-01-01T00:30:00Z"


def libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def spawn(database_url: str, now: str) -> subprocess.Popen:
    return subprocess.Popen(
        [FLATTR, "--json", "worker", "--once", "--now", now],
        env={**os.environ, "FLATTR_DATABASE_URL": database_url},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def finished(child: subprocess.Popen) -> list[dict]:
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    return json.loads(out)["done"]


def sessions(database_url: str, *, waiting: bool = False) -> int:
    """Sessions on the test's database (only those waiting for a lock)."""
    server = make_url(database_url).set(database="postgres")
    with psycopg.connect(libpq(server.render_as_string(hide_password=False)),
                         autocommit=True) as admin:
        return admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
            + (" AND wait_event_type = 'Lock'" if waiting else ""),
            (make_url(database_url).database,),
        ).fetchone()[0]


def wait_for(condition, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


class Blocker:
    """The test's own transaction holding a lock that a stage of the settlement needs."""

    def __init__(self, database_url: str, how: str) -> None:
        self.connection = psycopg.connect(libpq(database_url))
        if how == "outbox":  # the last stage writes the summaries into it
            self.connection.execute("LOCK TABLE outbox IN EXCLUSIVE MODE")
        else:  # the month's flattrs: the split (stage 2) takes it
            self.connection.execute("SELECT pg_advisory_xact_lock(%s, %s)",
                                    (PERIOD_FLATTRS_LOCK, period_lock_key(Period(2026, 11))))

    def release(self) -> None:
        self.connection.rollback()
        self.connection.close()


async def a_month(world, engine, period: str = "2026-11") -> None:
    await world.member("ann", credit="10", budget="5")
    await world.member("bob", credit="3", budget="2")
    await world.member("cid", credit="1", budget="2")
    await world.claim("bob", "bob.example")
    for handle in ("ann", "bob", "cid"):
        await world.flattr(handle, "https://bob.example/post" if handle != "bob"
                           else "https://elsewhere.example/", period)
    await engine.dispose()  # the workers' sessions are then the only ones on the database


async def books(engine) -> dict:
    async with engine.connect() as conn:
        return {
            "runs": dict((await conn.execute(
                select(settlements.c.period, settlements.c.status))).all()),
            "summaries": (await conn.execute(
                select(outbox.c.period, outbox.c.member_id, func.count())
                .where(outbox.c.kind == "summary")
                .group_by(outbox.c.period, outbox.c.member_id)
                .order_by(outbox.c.period, outbox.c.member_id))).all(),
            "charges": await conn.scalar(select(func.count()).select_from(charges)),
            "transactions": (await conn.execute(
                select(ledger_transactions.c.kind, ledger_transactions.c.period, func.count())
                .where(ledger_transactions.c.kind.startswith("settlement."))
                .group_by(ledger_transactions.c.kind, ledger_transactions.c.period)
                .order_by(ledger_transactions.c.kind, ledger_transactions.c.period))).all(),
            "broken": [f.invariant.name for f in await run_checks(conn) if not f.holds],
        }


def settled_by(done: list[dict]) -> list[tuple[str, int]]:
    return [(d["period"], d["stages_run"]) for d in done
            if d["work"] == "settle" and not d.get("skipped")]


async def test_a_second_worker_skips_the_month_the_first_is_settling(
        world, engine, database_url):
    await a_month(world, engine)
    blocker = Blocker(database_url, "outbox")
    try:
        first = spawn(database_url, NOVEMBER_SETTLES)
        wait_for(lambda: sessions(database_url, waiting=True) == 1)
        second = finished(spawn(database_url, NOVEMBER_SETTLES))
        assert [(d["work"], d.get("skipped")) for d in second] == [("settle", True)]
    finally:
        blocker.release()
    assert settled_by(finished(first)) == [("2026-11", 6)]
    settled = await books(engine)
    assert settled["runs"] == {"2026-11": "settled"}
    assert [count for *_, count in settled["summaries"]] == [1, 1, 1]
    assert settled["broken"] == []


async def test_two_workers_started_together_settle_each_month_once(
        world, engine, database_url):
    await a_month(world, engine)
    for now in (NOVEMBER_SETTLES, DECEMBER_SETTLES):
        both = [spawn(database_url, now) for _ in range(2)]
        done = [finished(child) for child in both]
        assert len(settled_by(done[0]) + settled_by(done[1])) == 1
    settled = await books(engine)
    assert settled["runs"] == {"2026-11": "settled", "2026-12": "settled"}
    assert all(count == 1 for *_, count in settled["summaries"])
    assert ("settlement.charge", "2026-11", 1) in settled["transactions"]
    assert settled["broken"] == []


@pytest.mark.parametrize(("blocked_in", "stages_left"), [("outbox", 1), ("split", 5)])
async def test_a_worker_killed_inside_a_stage_and_restarted_finishes_once(
        world, engine, database_url, blocked_in, stages_left):
    await a_month(world, engine)
    blocker = Blocker(database_url, blocked_in)
    try:
        doomed = spawn(database_url, NOVEMBER_SETTLES)
        wait_for(lambda: sessions(database_url, waiting=True) == 1)
        doomed.kill()  # SIGKILL, inside the stage
        doomed.communicate(timeout=30)
    finally:
        blocker.release()
    # The killed worker's server sessions end once the statement they wait on has run.
    wait_for(lambda: sessions(database_url) == 0)
    async with engine.connect() as conn:
        stage, status = (await conn.execute(select(settlements.c.stage, settlements.c.status)
                                            )).one()
    assert (stage, status) == (6 - stages_left, "settling")

    again = finished(spawn(database_url, NOVEMBER_SETTLES))
    assert settled_by(again) == [("2026-11", stages_left)]
    once = await books(engine)
    assert once["runs"] == {"2026-11": "settled"}
    assert [count for *_, count in once["summaries"]] == [1, 1, 1]
    assert once["charges"] == 3
    assert all(count == 1 for *_, count in once["transactions"])
    assert once["broken"] == []

    assert settled_by(finished(spawn(database_url, NOVEMBER_SETTLES))) == []
    assert await books(engine) == once
