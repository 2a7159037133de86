"""A settlement killed (SIGKILL) at random points, then resumed, books what a clean run books.

Two identical PostgreSQL databases hold a busy month. The first is settled in one go; the
second is settled by a process killed several times at random moments (before it starts,
inside a stage), then run to completion. Their books must be identical, timestamps and
autoincrement ids aside.
"""

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from core import claims
from core.checks import run_checks
from core.db import create_engine
from core.periods import Period
from core.schema import (
    accounts,
    charges,
    flattrs,
    ledger_transactions,
    outbox,
    postings,
    settlements,
    shares,
)
from core.settings import Settings
from core.settlement import STAGES, settle_period

pytestmark = pytest.mark.postgres_only

EARLIER = "2026-01"  # settled while building: leaves shares held for unclaimed things
PERIOD = "2026-07"  # under test: charges, releases, and returns what January held
MEMBERS = 1200
FLATTRS_EACH = 40
HOSTS = 900  # h1..h900.example, 10 pages each
CLAIMED_EARLY = 700  # member i owns host i from the start
CLAIMED_LATE = 760  # members 701..760 claim their host after January is settled
SEED = 20260701
KILLS = 8
LAST = len(STAGES)  # the stage whose commit settles the month: the summaries

CHILD = """
import asyncio, sys
from core.db import create_engine
from core.periods import Period
from core.settings import Settings
from core.settlement import STAGES, settle_period

async def main(url, period):
    engine = create_engine(url)
    try:
        print("ready", flush=True)
        await settle_period(
            engine, Period.parse(period), Settings(database_url=url, redis_url=None),
            on_stage=lambda number, name: print("stage", number, flush=True),
        )
    finally:
        await engine.dispose()

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""

# --- Building a busy month, set-based -----------------------------------------------------

MEMBERS_SQL = """
INSERT INTO members (handle, handle_key, budget_micros, created_at)
SELECT 'm' || i, 'm' || i,
       CASE WHEN i % 9 = 0 THEN NULL ELSE 2000000 + (i * 7919993) % 8000000 END, now()
FROM generate_series(1, CAST(:members AS bigint)) i
"""
BUDGETS_SQL = """
INSERT INTO budgets (member_id, budget_micros, set_at)
SELECT id, budget_micros, created_at FROM members WHERE budget_micros IS NOT NULL
"""
ACCOUNTS_SQL = """
INSERT INTO accounts (member_id, kind)
SELECT m.id, k.kind FROM members m CROSS JOIN (VALUES ('giving'), ('revenue')) k(kind)
"""
# Credits of 0 to 20 EUR, some under the 2 EUR minimum, as real funding transactions.
CREDIT_SQL = [
    """
    CREATE TEMP TABLE seed_credits ON COMMIT DROP AS
    SELECT id AS member_id, (id * 1361129) % 20000001 AS amount FROM members
    """,
    """
    INSERT INTO ledger_transactions (key, kind, member_id, created_at)
    SELECT 'funding:manual:seed-' || member_id, 'funding.manual', member_id, now()
    FROM seed_credits WHERE amount > 0
    """,
    """
    INSERT INTO postings (transaction_id, account_id, amount_micros)
    SELECT t.id, x.id, -c.amount
    FROM seed_credits c
    JOIN ledger_transactions t ON t.key = 'funding:manual:seed-' || c.member_id
    JOIN accounts x ON x.kind = 'external' AND x.member_id IS NULL
    UNION ALL
    SELECT t.id, g.id, c.amount
    FROM seed_credits c
    JOIN ledger_transactions t ON t.key = 'funding:manual:seed-' || c.member_id
    JOIN accounts g ON g.kind = 'giving' AND g.member_id = c.member_id
    """,
    """
    UPDATE accounts a SET balance_micros = a.balance_micros + d.total
    FROM (SELECT p.account_id, SUM(p.amount_micros) AS total
          FROM postings p JOIN ledger_transactions t ON t.id = p.transaction_id
          WHERE t.key LIKE 'funding:manual:seed-%' GROUP BY p.account_id) d
    WHERE a.id = d.account_id
    """,
    """
    INSERT INTO fundings (member_id, source, amount_micros, transaction_id, created_at)
    SELECT c.member_id, 'manual', c.amount, t.id, now()
    FROM seed_credits c
    JOIN ledger_transactions t ON t.key = 'funding:manual:seed-' || c.member_id
    """,
]
CLAIMS_SQL = """
INSERT INTO claims (member_id, host, path_prefix, proof_token, verified_at, created_at)
SELECT m.id, 'h' || i || '.example', '/', 'seed-' || i, now(), now()
FROM generate_series(1, :claimed) i JOIN members m ON m.handle_key = 'm' || i
"""
THINGS_SQL = """
INSERT INTO things (key, kind, url, host, path, owner_id, created_at)
SELECT 'https://h' || h || '.example/p' || p, 'url', 'https://h' || h || '.example/p' || p,
       'h' || h || '.example', '/p' || p,
       (SELECT c.member_id FROM claims c
        WHERE c.host = 'h' || h || '.example' AND c.verified_at IS NOT NULL),
       now()
FROM generate_series(1, :hosts) h CROSS JOIN generate_series(0, 9) p
"""
# Each member flattrs FLATTRS_EACH things picked by a hash, never their own, at times that
# tie now and then (the split's order is then decided by the flattr's id).
FLATTRS_SQL = """
INSERT INTO flattrs (member_id, thing_id, period, created_at, source)
SELECT m.id, t.id, :period,
       CAST(:start AS timestamptz) + make_interval(secs => (m.id * 13 + j * 7 + :salt) % 900),
       'web'
FROM members m
CROSS JOIN generate_series(0, :each - 1) j
JOIN (SELECT id, owner_id, ROW_NUMBER() OVER (ORDER BY id) - 1 AS n FROM things) t
  ON t.n = (m.id * 37 + j * 101 + :salt) % (SELECT COUNT(*) FROM things)
WHERE (t.owner_id IS NULL OR t.owner_id <> m.id) AND (m.id + :salt) % 11 <> 0
ON CONFLICT (member_id, thing_id, period) DO NOTHING
"""
SUBSCRIPTIONS_SQL = """
INSERT INTO subscriptions (member_id, thing_id, first_period, last_period, created_at)
SELECT m.id, t.id, '2026-07', '2026-09', now()
FROM members m CROSS JOIN generate_series(0, 2) j
JOIN (SELECT id, owner_id, ROW_NUMBER() OVER (ORDER BY id) - 1 AS n FROM things) t
  ON t.n = (m.id * 53 + j * 211) % (SELECT COUNT(*) FROM things)
WHERE m.id % 3 = 0 AND (t.owner_id IS NULL OR t.owner_id <> m.id)
"""


async def build(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(MEMBERS_SQL), {"members": MEMBERS})
            await conn.execute(text(BUDGETS_SQL))
            await conn.execute(text(ACCOUNTS_SQL))
            for statement in CREDIT_SQL:
                await conn.execute(text(statement))
            await conn.execute(text(CLAIMS_SQL), {"claimed": CLAIMED_EARLY})
            await conn.execute(text(THINGS_SQL), {"hosts": HOSTS})
            await add_flattrs(conn, EARLIER, salt=0)
        await settle_period(engine, Period.parse(EARLIER), Settings(database_url=url))

        # Claims verified between the two settlements release what their owner may have.
        async with engine.begin() as conn:
            ids = dict((await conn.execute(text("SELECT handle_key, id FROM members"))).all())
            for i in range(CLAIMED_EARLY + 1, CLAIMED_LATE + 1):
                claim = await claims.create_claim(conn, ids[f"m{i}"], f"h{i}.example")
                await claims.mark_verified(conn, claim.id)
            await conn.execute(text(SUBSCRIPTIONS_SQL))
            await add_flattrs(conn, PERIOD, salt=5)
        async with engine.begin() as conn:
            await conn.execute(text("ANALYZE"))  # the plans of a settlement in production
            assert await violations(conn) == {}
    finally:
        await engine.dispose()


async def add_flattrs(conn, period: str, salt: int) -> None:
    await conn.execute(
        text(FLATTRS_SQL),
        {"period": period, "start": Period.parse(period).starts_at, "each": FLATTRS_EACH,
         "salt": salt},
    )


# --- Reading the books --------------------------------------------------------------------


async def violations(conn) -> dict[str, list]:
    return {f.invariant.name: f.violations for f in await run_checks(conn) if not f.holds}


async def books(url: str) -> dict[str, list]:
    """Everything settlement writes, without timestamps and autoincrement ids."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            assert await violations(conn) == {}
            flattr_key = {
                i: (m, t, p)
                for i, m, t, p in await conn.execute(
                    select(flattrs.c.id, flattrs.c.member_id, flattrs.c.thing_id, flattrs.c.period)
                )
            }
            tx = ledger_transactions.c
            return {
                "transactions": sorted(
                    tuple(map(str, r))
                    for r in await conn.execute(select(tx.key, tx.kind, tx.period, tx.member_id))
                ),
                "postings": sorted(
                    tuple(r)
                    for r in await conn.execute(
                        select(tx.key, postings.c.account_id, postings.c.amount_micros).join(
                            ledger_transactions, tx.id == postings.c.transaction_id
                        )
                    )
                ),
                "accounts": sorted(
                    tuple(map(str, r))
                    for r in await conn.execute(
                        select(accounts.c.id, accounts.c.kind, accounts.c.member_id,
                               accounts.c.balance_micros)
                    )
                ),
                "charges": sorted(
                    tuple(map(str, r)) for r in await conn.execute(select(charges))
                ),
                "shares": sorted(
                    (*flattr_key[r.flattr_id], *(str(v) for v in r[2:]), r.giver_id)
                    for r in await conn.execute(select(shares))
                ),
                "flattrs": sorted(
                    tuple(map(str, r))
                    for r in await conn.execute(
                        select(flattrs.c.member_id, flattrs.c.thing_id, flattrs.c.period,
                               flattrs.c.created_at, flattrs.c.source)
                    )
                ),
                "summaries": sorted(
                    tuple(map(str, r))
                    for r in await conn.execute(
                        select(outbox.c.member_id, outbox.c.period, outbox.c.kind,
                               outbox.c.subject, outbox.c.data, outbox.c.text, outbox.c.html)
                    )
                ),
                "settlements": sorted(
                    tuple(map(str, r))
                    for r in await conn.execute(
                        select(
                            *(c for c in settlements.c
                              if c.name not in ("started_at", "finished_at"))
                        )
                    )
                ),
            }
    finally:
        await engine.dispose()


def run_state(url: str) -> tuple[int | None, str | None]:
    """The settlement row of PERIOD: (stage, status), (None, None) before it exists."""
    with psycopg.connect(libpq(url)) as conn:
        row = conn.execute(
            "SELECT stage, status FROM settlements WHERE period = %s", (PERIOD,)
        ).fetchone()
    return (row[0], row[1]) if row else (None, None)


def libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def wait_until_disconnected(admin_url: str, database: str, timeout: float = 60) -> None:
    """A killed client's server process lives until its statement ends: wait for it."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(libpq(admin_url), autocommit=True) as admin:
        while True:
            left = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (database,)
            ).fetchone()[0]
            if left == 0:
                return
            assert time.monotonic() < deadline, f"{left} sessions still on {database}"
            time.sleep(0.02)


# --- Running a settlement in a process of its own -----------------------------------------


def spawn(url: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, url, PERIOD],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=Path(__file__).resolve().parents[2], env=os.environ.copy(),
    )


def clean_run(url: str) -> tuple[float, dict[int, float]]:
    """Settle in one go; the time to "ready" (start-up) and each stage's duration."""
    started = time.monotonic()
    with spawn(url) as child:
        marks = {line.strip(): time.monotonic() - started for line in child.stdout}
        assert child.wait(timeout=300) == 0, child.stderr.read()
    stages, previous = {}, marks["ready"]
    for number in range(1, LAST + 1):
        stages[number] = marks[f"stage {number}"] - previous
        previous = marks[f"stage {number}"]
    return marks["ready"], stages


def killed_run(url: str, delay: float, *, after: str | None = None) -> tuple[bool, str]:
    """Start a settlement and SIGKILL it `delay` seconds after its start, or after it printed
    the line `after` ("ready": imports done; "stage 2": stage 2 committed); returns whether
    it was killed, and what it printed."""
    printed = []
    with spawn(url) as child:
        while after is not None and after not in printed:
            line = child.stdout.readline()
            if not line:
                break  # it ended without getting there (nothing left to do)
            printed.append(line.strip())
        try:
            child.wait(timeout=delay)
            killed = False
        except subprocess.TimeoutExpired:
            child.send_signal(signal.SIGKILL)
            child.wait()
            killed = True
        out, err = child.communicate()
    assert killed or child.returncode == 0, err
    return killed, " ".join([*printed, *out.split()])


def copy_of(databases, server: str, template_url: str, suffix: str) -> str:
    """CREATE DATABASE … TEMPLATE: the same data, byte for byte."""
    template = make_url(template_url)
    name = f"{template.database}_{suffix}"
    with psycopg.connect(libpq(server), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name} TEMPLATE {template.database}")
    databases.created.append(name)  # dropped with the others after the test
    return template.set(database=name).render_as_string(hide_password=False)


def kill_repeatedly(crashed: str, server: str, rng: random.Random, ready: float,
                    stages: dict[int, float]) -> list[tuple]:
    """KILLS runs of the settlement of `crashed`, each SIGKILLed at a random moment."""
    seen = []
    for attempt in range(KILLS):
        reached = run_state(crashed)[0] or 0
        # Some kills land during start-up (imports, opening the run). The others aim at a
        # random moment of a random stage still to do, timed from the line the run prints
        # when the stage before it has committed, since start-up time varies with the load.
        if attempt == 0 or reached == LAST or rng.random() < 0.2:
            after, delay = None, rng.uniform(0, ready + stages[1])
        else:
            target = rng.randint(reached + 1, LAST)
            # A resumed run prints nothing for the stages it skips.
            after = "ready" if target == reached + 1 else f"stage {target - 1}"
            delay = rng.uniform(0, stages[target])
        killed, output = killed_run(crashed, delay, after=after)
        wait_until_disconnected(server, make_url(crashed).database)
        state = run_state(crashed)
        seen.append((killed, *state))
        print(f"kill {attempt + 1}, {delay:.3f}s after {after or 'start'}: killed={killed} "
              f"printed={output!r} -> stage {state[0]} ({state[1]})")
    return seen


def test_a_killed_settlement_resumes_to_the_same_books(databases):
    server = databases.request.getfixturevalue("postgres_server_url")
    pristine = databases.new_url()
    asyncio.run(build(pristine))
    reference = copy_of(databases, server, pristine, "clean")

    ready, stages = clean_run(reference)
    print(f"\nclean run: ready after {ready:.2f}s, then stages "
          + ", ".join(f"{n}: {s:.2f}s" for n, s in stages.items()))
    assert run_state(reference) == (LAST, "settled")
    # Kills are timed from the line each stage prints, so a tenth of a second is room
    # enough; whether they landed inside is asserted below.
    assert sum(stages.values()) > 0.1, "the month is too small for kills to land in a stage"
    clean = asyncio.run(books(reference))

    rng = random.Random(SEED)
    landed_inside = []
    for round_ in range(1, 4):  # a run may outpace its kill: then another round, on a new copy
        crashed = copy_of(databases, server, pristine, f"crash{round_}")
        seen = kill_repeatedly(crashed, server, rng, ready, stages)
        killed, output = killed_run(crashed, 300)
        assert not killed, output
        assert run_state(crashed) == (LAST, "settled")

        resumed = asyncio.run(books(crashed))
        for part in clean:
            assert resumed[part] == clean[part], f"{part} differ after a crash"
        print(f"round {round_}: stages seen after the kills: {[s[1] for s in seen]}")
        landed_inside += [s for s in seen
                          if s[0] and s[1] is not None and 0 <= s[1] <= LAST - 1]
        if landed_inside:
            break
    assert landed_inside, "no kill landed inside the settlement"
