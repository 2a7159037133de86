"""Property tests of settlement: random months against an independent model in Python.

Each hypothesis example gets a fresh, migrated database of the backend under test. The
tests are synchronous and run their async body with asyncio.run, because hypothesis and
async fixtures do not mix. FLATTR_PROPERTY_EXAMPLES=1000 runs more examples than the
default 25 per backend.
"""

import asyncio
import itertools
import os
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, event, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import select

from core import funding, subscriptions
from core.checks import run_checks
from core.db import create_engine
from core.errors import ClaimTaken, OwnThing
from core.money import fee_of, format_amount, split_evenly
from core.periods import Period
from core.schema import (
    accounts,
    charges,
    flattrs,
    ledger_transactions,
    postings,
    settlements,
    shares,
    things,
)
from core.settings import Settings
from core.settlement import STAGES
from world import World

HOSTS = ("a.example", "b.example", "c.example")
PATHS = ("/", "/x", "/x/y", "/xz", "/z")  # /xz is not under the prefix /x
PREFIXES = ("/", "/x")
PERIODS = ("2026-01", "2026-02")
FAR_PERIODS = (None, "2026-07", "2026-08", "2026-10")  # 2026-07 returns January's held shares

EXAMPLES = hypothesis_settings(
    max_examples=int(os.environ.get("FLATTR_PROPERTY_EXAMPLES", "25")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

_credit_keys = itertools.count(1)


# --- Random months ------------------------------------------------------------------------


@dataclass(frozen=True)
class Month:
    credits: list[int]
    budgets: list[int | None]
    fee_bps: int
    idle_budget: str
    before: list[tuple]  # claims, flattrs, subscriptions of January and February
    between: list[tuple]  # after January is settled: claims, credits, February flattrs
    after: list[tuple]  # after February is settled: claims, credits, flattrs of `far`
    far: str | None  # a later period settled next (returns shares held long enough)
    late: list[tuple]  # claims after everything


def euros(low: int, high: int):
    whole = st.integers(low, high).map(lambda e: e * 1_000_000)
    return st.one_of(whole, st.integers(low * 1_000_000, high * 1_000_000))


@st.composite
def months(draw) -> Month:
    n = draw(st.integers(2, 8))
    member = st.integers(0, n - 1)
    claim = st.tuples(
        st.just("claim"), member, st.sampled_from(HOSTS), st.sampled_from(PREFIXES)
    )
    # c.example is only claimed once money has been held for it, so that claims release it.
    first_claim = st.tuples(
        st.just("claim"), member, st.sampled_from(HOSTS[:2]), st.sampled_from(PREFIXES)
    )
    credit = st.tuples(st.just("credit"), member, st.integers(1, 10_000_000))

    def flattr(periods):
        return st.tuples(
            st.just("flattr"), member, st.sampled_from(HOSTS), st.sampled_from(PATHS),
            st.sampled_from(periods), st.integers(0, 4),  # few distinct times: ties by id
        )

    far = draw(st.sampled_from(FAR_PERIODS))
    later_flattrs = [flattr((far,)), flattr((far,))] if far else []
    budget = st.one_of(st.none(), euros(2, 10), euros(2, 10), euros(2, 10))
    subscribe = st.tuples(
        st.just("subscribe"), member, st.sampled_from(HOSTS), st.sampled_from(PATHS),
        st.sampled_from(PERIODS), st.integers(0, 4), st.integers(1, 8),
    )
    return Month(
        credits=draw(st.lists(euros(0, 20), min_size=n, max_size=n)),
        budgets=draw(st.lists(budget, min_size=n, max_size=n)),
        fee_bps=draw(st.sampled_from([1000, 1000, 0, 333, 2500])),
        idle_budget=draw(st.sampled_from(["keep", "charity"])),
        before=draw(st.lists(first_claim, min_size=1, max_size=4))
        + draw(
            st.lists(
                st.one_of(flattr(PERIODS), flattr(PERIODS), first_claim, subscribe),
                min_size=12, max_size=40,
            )
        ),
        between=draw(st.lists(st.one_of(flattr(PERIODS[1:]), claim, claim, credit), max_size=8)),
        after=draw(st.lists(st.one_of(claim, claim, credit, *later_flattrs), max_size=12)),
        far=far,
        late=draw(st.lists(claim, max_size=3)),
    )


def covers(prefix: str, path: str) -> bool:
    """A claim's prefix covers whole path segments."""
    stem = prefix.rstrip("/")
    return path == stem or path.startswith(stem + "/")


def as_utc(moment: datetime) -> datetime:
    """SQLite gives timestamps back without their zone; they are UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def handle(index: int) -> str:
    return f"m{index}"


def received_at(period: str, offset: int) -> datetime:
    return Period.parse(period).starts_at + timedelta(hours=offset)


# --- The model: the rules of settlement, written again in plain Python ------------------


@dataclass
class ModelShare:
    giver: int
    period: str
    key: str
    owner: int | None
    amount: int
    state: str
    resolved_period: str | None = None
    resolved_by: str | None = None


@dataclass
class Model:
    settings: Settings
    budgets: dict[int, int | None]
    balances: dict[tuple[int | None, str], int] = field(default_factory=lambda: defaultdict(int))
    claims: dict[tuple[str, str], int] = field(default_factory=dict)
    things: dict[str, tuple[str, str]] = field(default_factory=dict)
    flattrs: dict[int, tuple[int, str, str, datetime]] = field(default_factory=dict)
    flattr_keys: set[tuple[int, str, str]] = field(default_factory=set)
    subscriptions: list[tuple[int, str, str, str]] = field(default_factory=list)
    charges: dict[tuple[int, str], tuple] = field(default_factory=dict)
    shares: dict[int, ModelShare] = field(default_factory=dict)
    settled: list[str] = field(default_factory=list)
    subscribed: int = 0  # flattrs added by subscriptions
    credited: int = 0

    def move(self, source: tuple, target: tuple, amount: int) -> None:
        self.balances[source] -= amount
        self.balances[target] += amount

    def credit(self, member: int, amount: int) -> None:
        self.credited += amount
        self.move((None, "external"), (member, "giving"), amount)

    def owner(self, key: str) -> int | None:
        host, path = self.things[key]
        covering = [(p, m) for (h, p), m in self.claims.items()
                    if h == host and covers(p, path)]
        return max(covering, key=lambda c: len(c[0]))[1] if covering else None

    def funded(self, member: int | None, period: str) -> bool:
        charge = self.charges.get((member, period))
        return charge is not None and charge[0] == "funded"

    def claim(self, member: int, host: str, prefix: str) -> str:
        """Returns "taken", "again" (already this member's) or "new" (held shares follow)."""
        holder = self.claims.get((host, prefix))
        if holder is not None:
            return "again" if holder == member else "taken"
        self.claims[(host, prefix)] = member
        latest = max(self.settled, default=None)
        if latest is None or not self.funded(member, latest):
            return "new"
        for share in self.shares.values():
            if (share.state == "held" and share.giver != member and share.period <= latest
                    and self.owner(share.key) == member):
                share.state, share.owner = "released", member
                share.resolved_period, share.resolved_by = str(Period.current()), "release:claim"
                self.move((None, "unclaimed"), (member, "revenue"), share.amount)
        return "new"

    def flattr(self, flattr_id: int | None, member: int, key: str, host: str, path: str,
               period: str, at: datetime) -> str:
        """Returns "own" (refused), "again" (flattred already this period) or "new"."""
        self.things.setdefault(key, (host, path))
        if self.owner(key) == member:
            return "own"
        if (member, key, period) in self.flattr_keys:
            return "again"
        self.flattr_keys.add((member, key, period))
        self.flattrs[flattr_id] = (member, key, period, at)
        return "new"

    def subscribe(self, member: int, key: str, host: str, path: str, first: str, months: int):
        """Returns "own" (refused) or "new"."""
        self.things.setdefault(key, (host, path))
        if self.owner(key) == member:
            return "own"
        last = str(Period.parse(first).plus_months(months - 1))
        self.subscriptions.append((member, key, first, last))
        return "new"

    def subscribed_months(self, after: str, before: str) -> list[str]:
        """The months strictly between two that a subscription gives a flattr: they are
        settled in order, before any later month."""
        months, month = [], Period.parse(after).next()
        while month < Period.parse(before):
            if any(first <= str(month) <= last for _, _, first, last in self.subscriptions):
                months.append(str(month))
            month = month.next()
        return months

    def subscribed_flattrs(self, period: str) -> set[tuple[int, str]]:
        """What stage 1 adds: a flattr for each running subscription not flattred already."""
        return {
            (member, key)
            for member, key, first, last in self.subscriptions
            if first <= period <= last and (member, key, period) not in self.flattr_keys
        }

    def settle(self, period: str, subscribed: dict[tuple[int, str], tuple[int, datetime]]) -> None:
        """`subscribed`: the flattrs stage 1 added, with the ids the database gave them."""
        assert set(subscribed) == self.subscribed_flattrs(period)
        self.subscribed += len(subscribed)
        for (member, key), (flattr_id, at) in subscribed.items():
            assert at == Period.parse(period).starts_at
            self.flattr_keys.add((member, key, period))
            self.flattrs[flattr_id] = (member, key, period, at)
        rules = self.settings
        counted = defaultdict(list)
        for flattr_id, (member, key, flattr_period, at) in self.flattrs.items():
            if flattr_period == period and self.owner(key) != member:
                counted[member].append((at, flattr_id))
        for member, received in counted.items():
            budget = self.budgets[member] or 0
            balance = self.balances[(member, "giving")]
            chargeable = min(budget, balance)
            if chargeable >= rules.minimum_budget:
                fee = fee_of(chargeable, rules.fee_bps)
                self.charges[(member, period)] = (
                    "funded", len(received), budget, balance, chargeable, fee, chargeable - fee,
                )
            else:
                self.charges[(member, period)] = (
                    "unfunded", len(received), budget, balance, 0, 0, 0,
                )
        for member, received in counted.items():
            status, n, _, _, charge, fee, net = self.charges[(member, period)]
            if status != "funded":
                continue
            self.move((member, "giving"), (None, "fees"), fee)
            self.move((member, "giving"), (None, "unclaimed"), net)
            for (_, flattr_id), amount in zip(sorted(received), split_evenly(net, n), strict=True):
                key = self.flattrs[flattr_id][1]
                owner = self.owner(key)
                paid = self.funded(owner, period)
                self.shares[flattr_id] = ModelShare(
                    member, period, key, owner, amount, "paid" if paid else "held"
                )
        if rules.idle_budget == "charity":
            for member, budget in self.budgets.items():
                balance = self.balances[(member, "giving")]
                if (budget is None or (member, period) in self.charges
                        or min(budget, balance) < rules.minimum_budget):
                    continue
                charge = min(budget, balance)
                self.charges[(member, period)] = ("idle", 0, budget, balance, charge, 0, charge)
                self.move((member, "giving"), (None, "charity"), charge)
        for share in self.shares.values():  # pay owners
            if share.period == period and share.state == "paid":
                self.move((None, "unclaimed"), (share.owner, "revenue"), share.amount)
        for share in self.shares.values():  # release held shares
            owner = self.owner(share.key)
            if share.state == "held" and self.funded(owner, period) and share.giver != owner:
                share.state, share.owner = "released", owner
                share.resolved_period, share.resolved_by = period, f"settle:{period}:release"
                self.move((None, "unclaimed"), (owner, "revenue"), share.amount)
        cutoff = str(Period.parse(period).plus_months(-rules.hold_months))
        for share in self.shares.values():  # return expired shares
            if share.state == "held" and share.period <= cutoff:
                share.state = "returned"
                share.resolved_period, share.resolved_by = period, f"settle:{period}:return"
                self.move((None, "unclaimed"), (share.giver, "giving"), share.amount)
        self.settled.append(period)


# --- Reading the database -----------------------------------------------------------------


async def db_balances(conn) -> dict[tuple[int | None, str], int]:
    rows = await conn.execute(
        select(accounts.c.member_id, accounts.c.kind, accounts.c.balance_micros)
    )
    return {(m, kind): balance for m, kind, balance in rows}


async def db_charges(conn) -> dict[tuple[int, str], tuple]:
    rows = await conn.execute(select(charges))
    return {
        (r.member_id, r.period): (
            r.status, r.flattr_count, r.budget_micros, r.balance_micros, r.charge_micros,
            r.fee_micros, r.net_micros,
        )
        for r in rows
    }


async def db_shares(conn) -> dict[int, ModelShare]:
    rows = await conn.execute(
        select(shares, things.c.key).join(things, things.c.id == shares.c.thing_id)
    )
    found = {}
    for r in rows:
        resolved_by = r.resolved_by
        if resolved_by and resolved_by.startswith("release:claim:"):
            resolved_by = "release:claim"  # the claim's id is not the model's business
        found[r.flattr_id] = ModelShare(
            r.giver_id, r.period, r.key, r.owner_id, r.amount_micros, r.state,
            r.resolved_period, resolved_by,
        )
    return found


async def snapshot(conn) -> dict[str, list]:
    """Everything settlement writes, without timestamps and autoincrement ids."""
    transactions = await conn.execute(
        select(
            ledger_transactions.c.key, ledger_transactions.c.kind, ledger_transactions.c.period,
            ledger_transactions.c.member_id, ledger_transactions.c.memo,
        )
    )
    moved = await conn.execute(
        select(ledger_transactions.c.key, postings.c.account_id, postings.c.amount_micros).join(
            ledger_transactions, ledger_transactions.c.id == postings.c.transaction_id
        )
    )
    share_rows = await conn.execute(
        select(shares, flattrs.c.member_id, flattrs.c.thing_id, flattrs.c.period.label("fp"))
        .join(flattrs, flattrs.c.id == shares.c.flattr_id)
    )
    runs = await conn.execute(
        select(
            settlements.c.period, settlements.c.stage, settlements.c.status,
            settlements.c.fee_bps, settlements.c.minimum_budget_micros,
            settlements.c.hold_months, settlements.c.idle_budget,
        )
    )
    return {
        "transactions": sorted(tuple(str(v) for v in r) for r in transactions),
        "postings": sorted(tuple(r) for r in moved),
        "accounts": sorted(
            (a, k, m or 0, b)
            for a, k, m, b in await conn.execute(
                select(accounts.c.id, accounts.c.kind, accounts.c.member_id,
                       accounts.c.balance_micros)
            )
        ),
        "charges": sorted(tuple(str(v) for v in r) for r in await conn.execute(select(charges))),
        "shares": sorted(tuple(str(v) for v in r) for r in share_rows),
        "flattrs": sorted(
            tuple(r) for r in await conn.execute(
                select(flattrs.c.member_id, flattrs.c.thing_id, flattrs.c.period,
                       flattrs.c.source)
            )
        ),
        "settlements": sorted(tuple(r) for r in runs),
    }


async def violations(conn) -> dict[str, list]:
    return {f.invariant.name: f.violations for f in await run_checks(conn) if not f.holds}


# --- a. Whole random months ---------------------------------------------------------------


@given(month=months())
@EXAMPLES
def test_random_months_keep_every_invariant(databases, month: Month):
    asyncio.run(play(databases.new_url(), month))


async def play(url: str, month: Month) -> None:
    settings = Settings(
        database_url=url, redis_url=None, fee_bps=month.fee_bps, idle_budget=month.idle_budget
    )
    engine = create_engine(url)
    try:
        world = World(engine, settings)
        budgets = {}
        for index, (credit, budget) in enumerate(zip(month.credits, month.budgets, strict=True)):
            member_id = await world.member(
                handle(index),
                credit=format_amount(credit) if credit else None,
                budget=format_amount(budget) if budget else None,
            )
            budgets[member_id] = budget
        model = Model(settings, budgets)
        for index, credit in enumerate(month.credits):
            if credit:
                model.credit(world.ids[handle(index)], credit)

        await act(world, model, month.before)
        await settle(world, model, PERIODS[0])
        await act(world, model, month.between)
        await settle(world, model, PERIODS[1])
        await act(world, model, month.after)
        if month.far:
            for between in model.subscribed_months(PERIODS[1], month.far):
                await settle(world, model, between)
            await settle(world, model, month.far)
        await act(world, model, month.late)
        await compare(world, model)
        for state in sorted({s.state for s in model.shares.values()}):
            event(f"a share ends {state}")
        for status in sorted({c[0] for c in model.charges.values()}):
            event(f"a charge is {status}")
        if model.subscribed:
            event("a subscription added a flattr")
        if any(s.resolved_by == "release:claim" for s in model.shares.values()):
            event("a claim released held shares")

        async with engine.connect() as conn:
            await check_properties(conn, model)
            before = await snapshot(conn)
        for period in model.settled:
            result = await world.settle(period)
            assert result.already_settled and result.stages_run == 0
        async with engine.connect() as conn:
            assert await snapshot(conn) == before, "settling again changed the books"
    finally:
        await engine.dispose()


async def act(world: World, model: Model, actions: list[tuple]) -> None:
    for action in actions:
        kind, index, *rest = action
        member_id = world.ids[handle(index)]
        if kind == "claim":
            host, prefix = rest
            expected = model.claim(member_id, host, prefix)
            try:
                await world.claim(handle(index), host, prefix)
                outcome = "new or again"
            except ClaimTaken:
                outcome = "taken"
            assert outcome == ("taken" if expected == "taken" else "new or again"), action
        elif kind == "subscribe":
            host, path, first, offset, length = rest
            key = f"https://{host}{path}"
            expected = model.subscribe(member_id, key, host, path, first, length)
            try:
                async with world.engine.begin() as conn:
                    await subscriptions.subscribe(
                        conn, member_id, key, length, now=received_at(first, offset)
                    )
                outcome = "new"
            except OwnThing:
                outcome = "own"
            assert outcome == expected, action
        elif kind == "credit":
            (amount,) = rest
            async with world.engine.begin() as conn:
                await funding.credit(conn, member_id, amount,
                                     idempotency_key=f"p{next(_credit_keys)}")
            model.credit(member_id, amount)
        else:
            host, path, period, offset = rest
            key, at = f"https://{host}{path}", received_at(period, offset)
            try:
                made = await world.flattr(handle(index), key, period, at=at)
            except OwnThing:
                assert model.flattr(None, member_id, key, host, path, period, at) == "own", action
                continue
            expected = model.flattr(made.flattr.id, member_id, key, host, path, period, at)
            assert expected == ("new" if made.created else "again"), action


async def settle(world: World, model: Model, period: str) -> None:
    result = await world.settle(period)
    assert result.stages_run == len(STAGES) and not result.already_settled
    async with world.engine.connect() as conn:
        rows = await conn.execute(
            select(flattrs.c.member_id, things.c.key, flattrs.c.id, flattrs.c.created_at)
            .join(things, things.c.id == flattrs.c.thing_id)
            .where(flattrs.c.period == period, flattrs.c.source == "subscription")
        )
        subscribed = {(m, key): (i, as_utc(at)) for m, key, i, at in rows}
    model.settle(period, subscribed)
    await compare(world, model)


async def compare(world: World, model: Model) -> None:
    """The database agrees with the model: balances, charges and every share."""
    async with world.engine.connect() as conn:
        balances = await db_balances(conn)
        expected = {key: value for key, value in model.balances.items() if value}
        assert {key: value for key, value in balances.items() if value} == expected
        assert await db_charges(conn) == model.charges
        assert await db_shares(conn) == model.shares


async def check_properties(conn, model: Model) -> None:
    """The properties of the brief, computed from the rows and not from the model."""
    assert await violations(conn) == {}

    amounts = (await conn.execute(select(postings.c.amount_micros))).scalars().all()
    assert sum(amounts) == 0, "the ledger does not sum to zero"

    charge_rows = (await conn.execute(select(charges))).all()
    share_rows = (await conn.execute(select(shares))).all()
    for period in model.settled:
        funded = [c for c in charge_rows if c.period == period and c.status == "funded"]
        shared = sum(s.amount_micros for s in share_rows if s.period == period)
        assert sum(c.charge_micros for c in funded) == sum(c.fee_micros for c in funded) + shared
        for c in funded:
            given = [s.amount_micros for s in share_rows
                     if s.period == period and s.giver_id == c.member_id]
            assert sum(given) == c.net_micros and len(given) == c.flattr_count
            assert max(given) - min(given) <= 1, f"uneven split {given}"
        unfunded = {c.member_id for c in charge_rows if c.period == period
                    and c.status != "funded"}
        assert not any(s.giver_id in unfunded for s in share_rows if s.period == period)

    balances = await db_balances(conn)
    held = sum(
        balance for (member_id, kind), balance in balances.items() if kind != "external"
    )
    assert held == model.credited == -balances[(None, "external")], "money was made or lost"


# --- b. The split rule against split_evenly ----------------------------------------------


@given(
    charge=st.one_of(st.integers(1, 40), st.integers(1, 100_000_000)),
    fee_bps=st.sampled_from([0, 0, 1000, 1]),
    offsets=st.lists(st.integers(0, 3), min_size=1, max_size=12),
)
@EXAMPLES
def test_one_givers_split_is_split_evenly_in_the_order_received(
    databases, charge: int, fee_bps: int, offsets: list[int]
):
    asyncio.run(split_once(databases.new_url(), charge, fee_bps, offsets))


async def split_once(url: str, charge: int, fee_bps: int, offsets: list[int]) -> None:
    settings = Settings(database_url=url, redis_url=None, fee_bps=fee_bps, minimum_budget=1)
    engine = create_engine(url)
    try:
        world = World(engine, settings)
        amount = format_amount(charge)
        await world.member("giver", credit=amount, budget=amount)
        received = []
        for number, offset in enumerate(offsets):
            made = await world.flattr(
                "giver", f"https://split.example/{number}", "2026-01",
                at=received_at("2026-01", offset),
            )
            received.append((offset, made.flattr.id))
        await world.settle("2026-01")

        net = charge - fee_of(charge, fee_bps)
        expected = dict(
            zip([i for _, i in sorted(received)], split_evenly(net, len(offsets)), strict=True)
        )
        async with engine.connect() as conn:
            split = dict(
                (await conn.execute(select(shares.c.flattr_id, shares.c.amount_micros))).all()
            )
            assert await violations(conn) == {}
        assert split == expected
    finally:
        await engine.dispose()

