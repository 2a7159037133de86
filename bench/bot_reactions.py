"""Reactions benchmark: Telegram reactions through the bot into the gateway.

`flattr serve` runs as a subprocess on PostgreSQL (Redis for its limits when it answers).
The bot's real PTB Application runs in this process, long polling the Bot API stand-in of
the tests (tests/telegram_standin.py) on loopback, with its gateway client, its concurrent
updates and an in-process author memory. The authors' posts are seen first; then each
reaction (a new reactor and post each time: every one makes a flattr) is put on the
stand-in's getUpdates queue, `--window` of them in flight at a time.

Figures, each the median of `--runs` runs:
- reactions a second, from the first reaction queued to the last gateway answer;
- p50 and p99 from a reaction queued at the stand-in to the gateway's answer to the bot;
- CPU per reaction of the bot (this process: PTB, the client, and the stand-in, which is
  idle while reactions flow: they need no answer from Telegram) and of the gateway (its
  process and children), and their ratio.
The baseline, measured in the same run on the same gateway: as many flattrs of chat posts
sent straight to the gateway by the bots' client, `--window` in flight, no PTB; the bot's
rate is reported as a ratio of it (1.0: the bot costs the path nothing).

    .venv/bin/python bench/bot_reactions.py [--reactions 4000] [--window 64] [--runs 3]
"""

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from clicks import free_port, process, scratch_database  # bench/clicks.py

from bots.client import GatewayClient
from bots.memory import LruMemory
from bots.telegram.app import ALLOWED_UPDATES, build_application, started
from bots.telegram.settings import TelegramSettings
from core import members, tokens
from core.db import create_engine
from core.migrate import upgrade

ROOT = Path(__file__).parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from telegram_standin import BOT_TOKEN, BotApiStandIn, Updates, group  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS = "redis://127.0.0.1:6379/15"
REACTORS = 400
AUTHORS = 40
CHAT = group(-1001000000001, "Bench")
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User and system CPU of a process and of its living children (from /proc)."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / TICKS
    family, total = {pid}, 0.0
    for _ in range(8):  # a few generations deep
        family |= {child for child, parent in parents.items() if parent in family}
    for member in family:
        total += times.get(member, 0.0)
    return total


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


class TimedGateway(GatewayClient):
    """The bot's client, noting when each flattr's answer came back."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.answered: dict[str, float] = {}
        self.window: asyncio.Semaphore | None = None

    async def flattr(self, identity: str, **kwargs):
        try:
            return await super().flattr(identity, **kwargs)
        finally:  # a refusal is an answer too
            self.answered[f"{identity} {kwargs['thing']}"] = time.perf_counter()
            if self.window is not None:
                self.window.release()


async def make_people(url: str) -> str:
    """Reactors and authors with linked Telegram identities, and the bot's token."""
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            for n in range(REACTORS):
                made = await members.create_member(conn, f"reactor{n}")
                await members.link_identity(conn, made.id, f"telegram:{10_000 + n}")
            for n in range(AUTHORS):
                made = await members.create_member(conn, f"author{n}")
                await members.link_identity(conn, made.id, f"telegram:{20_000 + n}")
            operator = await members.create_member(conn, "bench-bot")
            issued = await tokens.issue_token(conn, operator.id, frozenset({"bot"}),
                                              may_grant_privileged=True)
    finally:
        await engine.dispose()
    return issued.token


def plan(run: int, count: int, offset: int) -> list[tuple[int, int, int]]:
    """(reactor, message id, author) of each reaction: every pair new."""
    first_post = 1_000_000 * run + offset
    return [(10_000 + k % REACTORS, first_post + k // REACTORS, 20_000 + (k // REACTORS)
             % AUTHORS) for k in range(count)]


async def through_the_bot(api: BotApiStandIn, gateway: TimedGateway, reactions: list,
                          window: int) -> list[float]:
    """Queue reactions at the stand-in, `window` unanswered at most; their latencies."""
    updates = Updates(first_update_id=reactions[0][1] * 10)
    posts = {(message_id, author) for _, message_id, author in reactions}
    await api.push(*(updates.message(CHAT, {"id": author, "is_bot": False,
                                            "first_name": "A"}, "a post",
                                     message_id=message_id) for message_id, author in posts))
    await asyncio.sleep(0.5)  # the posts are seen before the first reaction
    gateway.window = asyncio.Semaphore(window)
    queued: dict[str, float] = {}
    for reactor, message_id, _ in reactions:
        await gateway.window.acquire()
        queued[f"telegram:{reactor} telegram:{CHAT['id']}/{message_id}"] = time.perf_counter()
        await api.push(updates.reaction(CHAT, message_id, reactor, new=["👍"]))
    while len([k for k in queued if k in gateway.answered]) < len(queued):
        await asyncio.sleep(0.01)
    gateway.window = None
    return [gateway.answered[k] - queued[k] for k in queued]


async def straight(gateway: GatewayClient, reactions: list, window: int) -> list[float]:
    slots = asyncio.Semaphore(window)

    async def one(reactor: int, message_id: int, author: int) -> float:
        async with slots:
            started_at = time.perf_counter()
            await gateway.flattr(f"telegram:{reactor}", thing=f"telegram:{CHAT['id']}/"
                                 f"{message_id}", author=f"telegram:{author}")
            return time.perf_counter() - started_at

    return list(await asyncio.gather(*(one(*r) for r in reactions)))


def figures(latencies: list[float], seconds: float, own_cpu: float, gateway_cpu: float
            ) -> dict:
    count = len(latencies)
    return {"rate": count / seconds, "p50_ms": percentile(latencies, 0.50) * 1000,
            "p99_ms": percentile(latencies, 0.99) * 1000,
            "own_cpu_us": own_cpu / count * 1e6, "gateway_cpu_us": gateway_cpu / count * 1e6}


async def measure(run: int, count: int, window: int, base: str, token: str, gateway_pid: int,
                  api: BotApiStandIn) -> dict:
    settings = TelegramSettings(telegram_token=BOT_TOKEN, telegram_base_url=api.root,
                                gateway_url=base, gateway_token=token, redis_url=None,
                                telegram_concurrent_updates=window)
    async with TimedGateway(base, token) as gateway:
        direct = plan(run, count, 500_000)
        cpu, gateway_cpu, started_at = time.process_time(), cpu_seconds(gateway_pid), \
            time.perf_counter()
        latencies = await straight(gateway, direct, window)
        baseline = figures(latencies, time.perf_counter() - started_at,
                           time.process_time() - cpu, cpu_seconds(gateway_pid) - gateway_cpu)
        app = build_application(settings, gateway=gateway, memory=LruMemory())
        async with app:
            await started(app)
            await app.start()
            await app.updater.start_polling(allowed_updates=ALLOWED_UPDATES)
            try:
                reactions = plan(run, count, 0)
                cpu, gateway_cpu, started_at = time.process_time(), \
                    cpu_seconds(gateway_pid), time.perf_counter()
                latencies = await through_the_bot(api, gateway, reactions, window)
                bot = figures(latencies, time.perf_counter() - started_at,
                              time.process_time() - cpu,
                              cpu_seconds(gateway_pid) - gateway_cpu)
            finally:
                await app.updater.stop()
                await app.stop()
    return {"bot": bot, "baseline": baseline}


async def bench(server_url: str, count: int, window: int, runs: int,
                redis_url: str | None) -> list[dict]:
    results = []
    with scratch_database(server_url) as url:
        await asyncio.to_thread(upgrade, url)
        token = await make_people(url)
        port = free_port()
        env = {"FLATTR_DATABASE_URL": url, "FLATTR_REDIS_URL": redis_url or ""}
        command = [str(ROOT / ".venv/bin/flattr"), "serve", "--no-demo", "--port", str(port)]
        api = await BotApiStandIn().start()
        logs = Path(tempfile.mkdtemp(prefix="flattr-bench-"))
        try:
            with process(command, port, env, logs / "gateway.stderr") as gateway:
                for run in range(1, runs + 1):
                    result = await measure(run, count, window, f"http://127.0.0.1:{port}",
                                           token, gateway.pid, api)
                    bot, baseline = result["bot"], result["baseline"]
                    print(f"run {run}: bot {bot['rate']:7.0f} reactions/s, p99 "
                          f"{bot['p99_ms']:6.1f} ms; straight {baseline['rate']:7.0f}/s, "
                          f"p99 {baseline['p99_ms']:6.1f} ms", flush=True)
                    results.append(result)
        finally:
            await api.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reactions", type=int, default=4000)
    parser.add_argument("--window", type=int, default=64,
                        help="reactions in flight (the bot's concurrent updates)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url", default=os.environ.get(
        "FLATTR_BENCH_DATABASE_URL", DEFAULT_URL), help="the server (a scratch database is "
        "made there)")
    parser.add_argument("--redis-url", default=os.environ.get(
        "FLATTR_BENCH_REDIS_URL", DEFAULT_REDIS), help="empty: limits in-process")
    args = parser.parse_args()
    results = asyncio.run(bench(args.database_url, args.reactions, args.window, args.runs,
                                args.redis_url or None))

    def median(side: str, name: str) -> float:
        return statistics.median(r[side][name] for r in results)

    rate, straight_rate = median("bot", "rate"), median("baseline", "rate")
    bot_cpu, gateway_cpu = median("bot", "own_cpu_us"), median("bot", "gateway_cpu_us")
    print(f"\n{args.reactions} reactions a run, {args.window} in flight, median of "
          f"{len(results)} runs:")
    print(f"  through the bot        {rate:8.0f} reactions/s   p50 {median('bot', 'p50_ms'):6.1f}"
          f" ms   p99 {median('bot', 'p99_ms'):6.1f} ms (update queued -> gateway answer)")
    print(f"  straight to the gateway {straight_rate:7.0f} flattrs/s     p50 "
          f"{median('baseline', 'p50_ms'):6.1f} ms   p99 {median('baseline', 'p99_ms'):6.1f} ms")
    print(f"  ratio bot / straight    {rate / straight_rate:7.2f}")
    print(f"  CPU a reaction: bot {bot_cpu:6.0f} us, gateway {gateway_cpu:6.0f} us, "
          f"bot / gateway {bot_cpu / gateway_cpu:5.2f} (the client alone, straight: "
          f"{median('baseline', 'own_cpu_us'):4.0f} us)")


if __name__ == "__main__":
    main()
