"""Delivery benchmark: simulated bots lease and acknowledge messages through the gateway.

`flattr serve` runs as a subprocess on PostgreSQL (and Redis, when it answers) with its
default limits; a few bots, each with its own `bot` token, lease 50 telegram messages at a
time and acknowledge them, either in one batch (`POST /bot/outbox/ack`) or each on its own
(`POST /bot/outbox/{id}/ack`, several in flight, as a bot sending to several chats does).
Each way delivers `messages` messages; the figure is messages acknowledged a second, from
the first lease to the last acknowledgement. The target is at least 1,000 a second, far
above what the chat platforms take (Telegram about 30 a second).

    .venv/bin/python bench/delivery.py [--messages 20000] [--bots 4] [--runs 3]

Standalone it makes a scratch database and reports the median of the runs;
bench/summaries.py calls `lease_ack_rate` on its settled month.
"""

import argparse
import asyncio
import os
import secrets
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from clicks import free_port, process, scratch_database  # bench/clicks.py
from sqlalchemy import text

from core import members, tokens
from core.db import create_engine
from core.migrate import upgrade

ROOT = Path(__file__).parent.parent

TARGET = 1000.0  # messages a second
LEASE_MAX = 50
ACKS_IN_FLIGHT = 10  # per bot, acknowledging one by one
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS = "redis://127.0.0.1:6379/15"
# A summary as long as a real one (they run to about 1,500 characters).
TEXT = ("Your Flattr month 2099-12\n" + "You flattred 20 things; 4.50 EUR went to 12 creators. "
        * 28)[:1500]

# Set-based: N members, a summary each, and a pending telegram delivery of each.
FILL = text("""
WITH made AS (
    INSERT INTO members (handle, handle_key, created_at)
    SELECT :tag || n, :tag || n, now() FROM generate_series(1, :count) AS n
    RETURNING id
), queued AS (
    INSERT INTO outbox (member_id, period, kind, subject, data, text, html, created_at)
    SELECT id, '2099-12', 'summary', 'Your Flattr month 2099-12', '{}', :text,
           '<p>Your Flattr month</p>', now()
    FROM made
    RETURNING id, member_id
)
INSERT INTO outbox_deliveries (message_id, member_id, channel, address, state, attempts,
                               available_at, created_at)
SELECT id, member_id, 'telegram', 'telegram:' || (700000000 + member_id), 'pending', 0,
       now(), now()
FROM queued
""")
DUE = text("""
SELECT count(*) FROM outbox_deliveries
WHERE channel = 'telegram' AND state IN ('pending', 'leased') AND available_at <= now()
""")


@dataclass
class Tally:
    """What the bots of one run did, shared among them."""

    target: int
    acknowledged: int = 0
    requests: int = 0
    refused: int = 0  # answers other than 200 (a 429 would show here)
    leased: set[int] = field(default_factory=set)
    twice: int = 0

    def took(self, messages: list[dict]) -> None:
        for message in messages:
            if message["id"] in self.leased:
                self.twice += 1
            self.leased.add(message["id"])


async def fill(database_url: str, count: int) -> str:
    """At least `count` telegram deliveries due; makes the ones missing. Returns the URL."""
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            missing = count - await conn.scalar(DUE)
            if missing > 0:
                tag = f"d{secrets.token_hex(4)}_"
                await conn.execute(FILL, {"tag": tag, "count": missing, "text": TEXT})
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("ANALYZE outbox_deliveries"))
    finally:
        await engine.dispose()
    return database_url


async def bot_tokens(database_url: str, count: int) -> list[str]:
    engine = create_engine(database_url)
    made = []
    try:
        async with engine.begin() as conn:
            for _ in range(count):
                bot = await members.create_member(conn, f"bot_{secrets.token_hex(4)}")
                issued = await tokens.issue_token(conn, bot.id, frozenset({"bot"}),
                                                  label="delivery bench",
                                                  may_grant_privileged=True)
                made.append(issued.token)
    finally:
        await engine.dispose()
    return made


async def call(session: aiohttp.ClientSession, tally: Tally, path: str, body: dict | None
               ) -> dict | None:
    async with session.post(path, json=body) as response:
        tally.requests += 1
        answer = await response.json()
        if response.status != 200:
            tally.refused += 1
            await asyncio.sleep(float(response.headers.get("Retry-After", "0.1")))
            return None
        return answer


async def run_bot(base: str, token: str, tally: Tally, batch: bool) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    connector = aiohttp.TCPConnector(limit=ACKS_IN_FLIGHT + 1)
    async with aiohttp.ClientSession(base, headers=headers, connector=connector) as session:
        acks = asyncio.Semaphore(ACKS_IN_FLIGHT)

        async def ack_one(delivery_id: int) -> None:
            async with acks:
                if await call(session, tally, f"/api/v1/bot/outbox/{delivery_id}/ack", None):
                    tally.acknowledged += 1

        while tally.acknowledged < tally.target:
            leased = await call(session, tally, "/api/v1/bot/outbox/lease",
                                {"platform": "telegram", "max": LEASE_MAX})
            if leased is None:
                continue
            messages = leased["messages"]
            if not messages:
                return  # the outbox is empty
            tally.took(messages)
            ids = [m["id"] for m in messages]
            if batch:
                done = await call(session, tally, "/api/v1/bot/outbox/ack", {"ids": ids})
                tally.acknowledged += done["acknowledged"] if done else 0
            else:
                await asyncio.gather(*(ack_one(i) for i in ids))


async def deliver(base: str, bot_secrets: list[str], messages: int, batch: bool) -> dict:
    tally = Tally(messages)
    started = time.perf_counter()
    await asyncio.gather(*(run_bot(base, token, tally, batch) for token in bot_secrets))
    seconds = time.perf_counter() - started
    return {"rate": tally.acknowledged / seconds, "acknowledged": tally.acknowledged,
            "seconds": seconds, "requests": tally.requests, "refused": tally.refused,
            "leased_twice": tally.twice}


async def lease_ack_rate(database_url: str, messages: int = 20000, *, bots: int = 4,
                         redis_url: str | None = DEFAULT_REDIS) -> dict:
    """Messages a second that bots lease and acknowledge through `flattr serve` on the
    migrated PostgreSQL database `database_url`: first with batch acknowledgements, then one
    by one, `messages` each (missing telegram deliveries are made first)."""
    await fill(database_url, 2 * messages)
    bot_secrets = await bot_tokens(database_url, bots)
    port = free_port()
    env = {"FLATTR_DATABASE_URL": database_url, "FLATTR_REDIS_URL": redis_url or ""}
    command = [str(ROOT / ".venv/bin/flattr"), "serve", "--no-demo", "--port", str(port),
               "--workers", "1"]
    base = f"http://127.0.0.1:{port}"
    with process(command, port, env):
        batched = await deliver(base, bot_secrets, messages, batch=True)
        one_by_one = await deliver(base, bot_secrets, messages, batch=False)
    return {
        "messages": messages,
        "bots": bots,
        "batch_ack_msgs_per_s": round(batched["rate"], 1),
        "single_ack_msgs_per_s": round(one_by_one["rate"], 1),
        "batch_ack_requests": batched["requests"],
        "single_ack_requests": one_by_one["requests"],
        "refused_answers": batched["refused"] + one_by_one["refused"],
        "leased_twice": batched["leased_twice"] + one_by_one["leased_twice"],
        "target_msgs_per_s": TARGET,
        "target_met": min(batched["rate"], one_by_one["rate"]) >= TARGET,
    }


async def bench(server_url: str, messages: int, bots: int, runs: int,
                redis_url: str | None) -> list[dict]:
    results = []
    with scratch_database(server_url) as url:
        await asyncio.to_thread(upgrade, url)
        for number in range(1, runs + 1):
            result = await lease_ack_rate(url, messages, bots=bots, redis_url=redis_url)
            print(f"run {number}: batch ack {result['batch_ack_msgs_per_s']:8.0f} msg/s, "
                  f"one by one {result['single_ack_msgs_per_s']:8.0f} msg/s", flush=True)
            results.append(result)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--bots", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url", default=os.environ.get(
        "FLATTR_BENCH_DATABASE_URL", DEFAULT_URL), help="the server (a scratch database is "
        "made there)")
    parser.add_argument("--redis-url", default=os.environ.get(
        "FLATTR_BENCH_REDIS_URL", DEFAULT_REDIS), help="empty: limits in-process")
    args = parser.parse_args()
    results = asyncio.run(bench(args.database_url, args.messages, args.bots, args.runs,
                                args.redis_url or None))
    batch = statistics.median(r["batch_ack_msgs_per_s"] for r in results)
    single = statistics.median(r["single_ack_msgs_per_s"] for r in results)
    refused = sum(r["refused_answers"] for r in results)
    twice = sum(r["leased_twice"] for r in results)
    print(f"\n{args.messages} messages a way, {args.bots} bots, median of {len(results)} runs:")
    print(f"  batch ack (lease 50, ack 50 in one request)   {batch:8.0f} msg/s")
    print(f"  one by one (lease 50, {ACKS_IN_FLIGHT} acks in flight a bot)  {single:8.0f} msg/s")
    print(f"  answers other than 200: {refused}; messages leased twice: {twice}")
    print(f"target >= {TARGET:.0f} msg/s: "
          f"{'met' if min(batch, single) >= TARGET else 'TARGET MISSED'}")
    if twice:
        raise SystemExit("a message was leased twice within its lease")


if __name__ == "__main__":
    main()
