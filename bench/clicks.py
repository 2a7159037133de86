"""Click path benchmark: the gateway on PostgreSQL + Redis against a bare aiohttp handler.

Both are driven by wrk with the same load (64 connections, many members flattring many
URLs) in the same run. For each server it prints the request rate, p50/p99 latency and,
read from /proc over the timed window only, the CPU microseconds a request cost in the
server's processes, in the PostgreSQL backends of the benchmark's database, in the rest of
PostgreSQL, in Redis and in wrk; and the gateway's longest event-loop pauses in the window
with their cause (a garbage collection or a late loop) and its batched writes of flattrs that
took as long, from the lines it logs. It then checks that the database holds exactly the
flattrs answered 201. With --workers N the gateway (`flattr serve --workers N`) and the bare
handler also run as N processes and are compared. --runs N repeats everything on a fresh
database and reports the median of the runs.

    .venv/bin/python bench/clicks.py [--seconds 10] [--connections 64] [--members 2000]
                                     [--workers 2] [--runs 3]
"""

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path

import cpu_time  # bench/cpu_time.py
import psycopg
from redis import Redis
from sqlalchemy.engine import make_url

from core import members, tokens
from core.db import create_engine
from core.migrate import upgrade

HERE = Path(__file__).parent
ROOT = HERE.parent
TARGET_RATIO = 0.40
TARGET_P99_MS = 25.0
WRK_THREADS = 2
PAUSE_LOG_MS = 10.0  # the gateway logs each pause of its event loop this long or longer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def scratch_database(server_url: str):
    name = f"flattr_clicks_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(libpq(server_url), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with psycopg.connect(libpq(server_url), autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


async def make_members(url: str, count: int) -> list[str]:
    engine = create_engine(url)
    made = []
    async with engine.begin() as conn:
        for n in range(count):
            member = await members.create_member(conn, f"clicker{n}")
            issued = await tokens.issue_token(conn, member.id, frozenset({"read", "flattr"}))
            made.append(issued.token)
    await engine.dispose()
    return made


@contextmanager
def process(command: list[str], port: int, env: dict[str, str], stderr_path: Path):
    """Run a server until the block ends, then stop it with SIGTERM (gracefully) and wait.
    Its standard error goes to a file (a pipe nobody reads could fill and stall it)."""
    with open(stderr_path, "w") as stderr:
        proc = subprocess.Popen(command, env={**os.environ, **env},
                                stdout=subprocess.DEVNULL, stderr=stderr, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if proc.poll() is not None:
                    raise SystemExit(f"{command[0]} exited: {stderr_path.read_text()}") \
                        from None
                time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wrk(port: int, seconds: int, connections: int, token_file: Path, *,
        warmup: bool = False, warmup_from: int = 0) -> dict[str, float]:
    output = subprocess.run(
        ["wrk", f"-t{WRK_THREADS}", f"-c{connections}", f"-d{seconds}s", "--latency",
         "-s", str(HERE / "clicks.lua"), f"http://127.0.0.1:{port}"],
        env={**os.environ, "TOKENS": str(token_file), "THREADS": str(WRK_THREADS),
             "WARMUP": "1" if warmup else "0", "WARMUP_FROM": str(warmup_from)},
        capture_output=True, text=True, check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    requests = int(re.search(r"(\d+) requests in", output).group(1))
    status = dict(re.findall(r"(\w+)=(\d+)", re.search(r"STATUS (.*)", output).group(1)))
    latency = dict(re.findall(r"(\w+)=(\d+)", re.search(r"LATENCY (.*)", output).group(1)))
    return {"rate": rate, "requests": requests, **{k: int(v) for k, v in status.items()},
            "p50_ms": int(latency["p50_us"]) / 1000, "p99_ms": int(latency["p99_us"]) / 1000}


def timed_wrk(port: int, seconds: int, connections: int, token_file: Path,
              window: cpu_time.Window) -> dict:
    """The timed run, with the CPU every process spent in it (wrk's own from its rusage)."""
    window.start()
    wrk_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.monotonic()
    measured = wrk(port, seconds, connections, token_file)
    ended = time.monotonic()
    wrk_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = window.stop()
    cpu["wrk"] = (wrk_after.ru_utime + wrk_after.ru_stime
                  - wrk_before.ru_utime - wrk_before.ru_stime)
    return {**measured, "cpu": cpu, "window": (began, ended)}


def cpu_window(server: subprocess.Popen, url: str, redis_url: str | None) -> cpu_time.Window:
    redis_pid = Redis.from_url(redis_url).info("server")["process_id"] if redis_url else None

    def groups() -> dict[str, list[int]]:
        postgres = cpu_time.postgres_processes(libpq(url))
        return {"server": cpu_time.process_tree(server.pid),
                "postgres backends": postgres["backends"],
                "postgres server": postgres["server"],
                "redis": [redis_pid] if redis_pid else []}

    return cpu_time.Window(groups)


def gateway_counts(log_path: Path) -> dict[str, int]:
    """The 201s the gateway's processes sent and their batched writes, summed from the line
    each process logs when it stops (FLATTR_LOG_FORMAT=json)."""
    lines = list(map(json.loads, log_path.read_text().splitlines()))
    stopped = [line for line in lines
               if line["message"] == "stopped" and "flattrs_created" in line]
    if not stopped:
        raise SystemExit(f"the gateway did not stop cleanly:\n{log_path.read_text()}")
    return {"processes": len(stopped),
            "sent": sum(line["flattrs_created"] for line in stopped),
            "batches": sum(line["flattr_batches"] for line in stopped),
            "batched": sum(line["flattr_batch_requests"] for line in stopped),
            "pauses": [line["pause"] for line in lines if "pause" in line]}


def run_bare(url: str, processes: int, seconds: int, connections: int, token_file: Path,
             tmp: Path) -> dict:
    port = free_port()
    with process([sys.executable, str(HERE / "bare_handler.py"), str(port), str(processes)],
                 port, {}, tmp / f"bare-{processes}.log") as server:
        wrk(port, 2, connections, token_file, warmup=True)
        return timed_wrk(port, seconds, connections, token_file, cpu_window(server, url, None))


def warm_up(port: int, workers: int, connections: int, token_file: Path) -> None:
    """Load the gateway until each process has most likely cached every token.

    The warm-up goes through the tokens in turn; workers share the connections at random,
    so each process is given each token three times over on average. A slower machine
    takes longer: a fixed time could leave the timed run looking tokens up.
    """
    tokens = len(token_file.read_text().split())
    sent = 0
    while sent < 3 * tokens * workers:
        answered = wrk(port, 2, connections, token_file, warmup=True,
                       warmup_from=sent)["requests"]
        if answered == 0:
            raise SystemExit("the gateway answered nothing during the warm-up")
        sent += answered


def run_gateway(url: str, redis_url: str, workers: int, seconds: int, connections: int,
                token_file: Path, tmp: Path) -> dict:
    """One timed wrk run against `flattr serve --workers N`, stopped by SIGTERM after it."""
    port = free_port()
    env = {"FLATTR_DATABASE_URL": url, "FLATTR_REDIS_URL": redis_url,
           "FLATTR_RATE_LIMIT_PER_MINUTE": "1000000000",
           "FLATTR_RATE_LIMIT_PER_MINUTE_PER_ADDRESS": "1000000000",
           "FLATTR_LOG_FORMAT": "json", "FLATTR_PAUSE_LOG_MS": str(PAUSE_LOG_MS)}
    log_path = tmp / f"gateway-{workers}.log"
    stored_before = flattr_count(url)
    with process([str(ROOT / ".venv/bin/flattr"), "serve", "--no-demo", "--port", str(port),
                  "--workers", str(workers)], port, env, log_path) as server:
        for _ in range(50):  # every process up (a worker answers once it listens)
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz").read()
        warm_up(port, workers, connections, token_file)
        measured = timed_wrk(port, seconds, connections, token_file,
                             cpu_window(server, url, redis_url))
        time.sleep(1)  # requests still in flight when wrk stopped are answered now
    counts = gateway_counts(log_path)
    if counts["processes"] != workers:
        raise SystemExit(f"{counts['processes']} of {workers} processes stopped cleanly")
    began, ended = measured["window"]
    counts["pauses"] = sorted((p for p in counts["pauses"] if began <= p["monotonic"] <= ended),
                              key=lambda p: -p["pause_ms"])
    return {**measured, **counts, "stored": flattr_count(url) - stored_before}


def flattr_count(url: str) -> int:
    with psycopg.connect(libpq(url)) as conn:
        return conn.execute("SELECT COUNT(*) FROM flattrs").fetchone()[0]


CPU_GROUPS = ("server", "postgres backends", "postgres server", "redis", "wrk")


def one_run(args, token_count: int) -> dict[str, dict]:
    """A fresh database, its members, then each server in turn under the same load."""
    workers = args.workers
    with scratch_database(args.database_url) as url, tempfile.TemporaryDirectory() as tmp:
        upgrade(url)
        token_file = Path(tmp) / "tokens.txt"
        token_file.write_text("\n".join(asyncio.run(make_members(url, token_count))) + "\n")
        load = (args.seconds, args.connections, token_file, Path(tmp))
        columns = {"bare": run_bare(url, 1, *load),
                   "gateway": run_gateway(url, args.redis_url, 1, *load)}
        if workers > 1:
            columns[f"bare x{workers}"] = run_bare(url, workers, *load)
            columns[f"gateway x{workers}"] = run_gateway(url, args.redis_url, workers, *load)
    return columns


def print_run(number: int, columns: dict[str, dict]) -> None:
    print(f"\nrun {number}")
    print(f"{'':34}" + "".join(f"{name:>14}" for name in columns))

    def row(label: str, value) -> None:
        print(f"{label:34}" + "".join(f"{value(figures):>14}" for figures in columns.values()))

    row("requests/s", lambda f: f"{f['rate']:.0f}")
    row("p50 latency (ms)", lambda f: f"{f['p50_ms']:.2f}")
    row("p99 latency (ms)", lambda f: f"{f['p99_ms']:.2f}")
    row("answers 201/200/other", lambda f: f"{f['created']}/{f['existed']}/{f['other']}")
    for group in CPU_GROUPS:
        row(f"CPU us/request: {group}", lambda f, g=group: f"{cpu_per_request(f, g):.1f}")
    row("cores busy (of " + str(os.cpu_count()) + ")",
        lambda f: f"{sum(f['cpu'].values()) / (f['window'][1] - f['window'][0]):.2f}")
    row(f"loop/gc pauses >= {PAUSE_LOG_MS:g} ms", lambda f: str(sum(
        p["cause"] != "write" for p in f["pauses"])) if "pauses" in f else "-")
    row(f"batched writes >= {PAUSE_LOG_MS:g} ms", lambda f: str(sum(
        p["cause"] == "write" for p in f["pauses"])) if "pauses" in f else "-")
    for name, figures in columns.items():
        if figures.get("pauses"):
            print(f"{name}: longest pauses (ms): " + ", ".join(
                f"{p['pause_ms']:.1f} {pause_cause(p)}" for p in figures["pauses"][:6]))
    for name, figures in columns.items():
        if "sent" not in figures:
            continue
        print(f"{name}: batched writes {figures['batches']}, "
              f"{figures['batched'] / max(figures['batches'], 1):.1f} requests each on average")
        # wrk drops the answers in flight when it stops, so the server's own count of the
        # 201s it sent is the exact one; wrk's is a lower bound of it.
        print(f"{name}: durability: answered 201 {figures['sent']} times (wrk saw "
              f"{figures['created']} in the timed run), the database holds "
              f"{figures['stored']} new flattrs")
        if figures["stored"] != figures["sent"]:
            raise SystemExit("DURABILITY FAILED: the database does not hold exactly the 201s")


def pause_cause(pause: dict) -> str:
    if pause["cause"] == "write":
        return f"write of {pause['items']}"
    return "gc" + str(pause["generation"]) if pause["cause"] == "gc" else "loop"


def cpu_per_request(figures: dict, group: str) -> float:
    return figures["cpu"][group] * 1e6 / max(figures["requests"], 1)


def print_summary(runs: list[dict[str, dict]], bare: str, gateway: str) -> tuple[float, float]:
    """A line a run and their median: the ratio and the gateway's p99 are the targets'."""
    print(f"\n{gateway} against {bare}")
    header = ["run", f"{bare} req/s", f"{gateway} req/s", "ratio", "p50 ms", "p99 ms",
              "gw us/req", "gw PG us/req", "bare us/req", "longest pause ms"]
    print(" | ".join(header))
    rows = []
    for number, columns in enumerate(runs, 1):
        b, g = columns[bare], columns[gateway]
        rows.append([b["rate"], g["rate"], g["rate"] / b["rate"], g["p50_ms"], g["p99_ms"],
                     cpu_per_request(g, "server"), cpu_per_request(g, "postgres backends"),
                     cpu_per_request(b, "server"),
                     g["pauses"][0]["pause_ms"] if g["pauses"] else 0.0])
        print(" | ".join([str(number)] + [format_cell(i, v) for i, v in enumerate(rows[-1])]))
    medians = [statistics.median(column) for column in zip(*rows, strict=True)]
    print(" | ".join(["median"] + [format_cell(i, v) for i, v in enumerate(medians)]))
    return medians[2], medians[4]


def format_cell(index: int, value: float) -> str:
    return f"{value:.2f}" if index == 2 else f"{value:.1f}" if index >= 3 else f"{value:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=1,
                        help="repeat the whole measurement and report the medians")
    parser.add_argument("--workers", type=int, default=1,
                        help="also run the gateway and the bare handler as this many "
                             "processes and compare them")
    parser.add_argument("--database-url", default=os.environ.get(
        "FLATTR_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--redis-url", default=os.environ.get(
        "FLATTR_BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"))
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk")

    runs = []
    for number in range(1, args.runs + 1):
        runs.append(one_run(args, args.members))
        print_run(number, runs[-1])
    ratio, p99 = print_summary(runs, "bare", "gateway")
    print(f"median ratio gateway/bare: {ratio:.2f} (target >= {TARGET_RATIO:.2f}); "
          f"median gateway p99 {p99:.1f} ms (target <= {TARGET_P99_MS:.0f} ms)")
    met = ratio >= TARGET_RATIO and p99 <= TARGET_P99_MS
    if args.workers > 1:
        n = args.workers
        ratio_n, p99_n = print_summary(runs, f"bare x{n}", f"gateway x{n}")
        print(f"median ratio gateway x{n}/bare x{n}: {ratio_n:.2f}; median p99 {p99_n:.1f} ms")
        met = met or (ratio_n >= TARGET_RATIO and p99_n <= TARGET_P99_MS)
    if not met:
        print("TARGET MISSED")


if __name__ == "__main__":
    main()
