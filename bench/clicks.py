"""Click path benchmark: the gateway on PostgreSQL + Redis against a bare aiohttp handler.

Both are driven by wrk with the same load (64 connections, many members flattring many
URLs) in the same run. Prints both request rates, their ratio and the gateway's p50/p99
latency, then checks that the database holds exactly the flattrs answered 201. With
--workers N the gateway runs a second time as N processes (`flattr serve --workers N`) and
the rate of N processes is compared with the rate of one.

    .venv/bin/python bench/clicks.py [--seconds 10] [--connections 64] [--members 2000]
                                     [--workers 2]
"""

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from core import members, tokens
from core.db import create_engine
from core.migrate import upgrade

HERE = Path(__file__).parent
ROOT = HERE.parent
TARGET_RATIO = 0.40
TARGET_P99_MS = 25.0
WRK_THREADS = 2


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
        warmup: bool = False) -> dict[str, float]:
    output = subprocess.run(
        ["wrk", f"-t{WRK_THREADS}", f"-c{connections}", f"-d{seconds}s", "--latency",
         "-s", str(HERE / "clicks.lua"), f"http://127.0.0.1:{port}"],
        env={**os.environ, "TOKENS": str(token_file), "THREADS": str(WRK_THREADS),
             "WARMUP": "1" if warmup else "0"},
        capture_output=True, text=True, check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    status = dict(re.findall(r"(\w+)=(\d+)", re.search(r"STATUS (.*)", output).group(1)))
    latency = dict(re.findall(r"(\w+)=(\d+)", re.search(r"LATENCY (.*)", output).group(1)))
    return {"rate": rate, **{k: int(v) for k, v in status.items()},
            "p50_ms": int(latency["p50_us"]) / 1000, "p99_ms": int(latency["p99_us"]) / 1000}


def gateway_counts(log_path: Path) -> dict[str, int]:
    """The 201s the gateway's processes sent and their batched writes, summed from the line
    each process logs when it stops (FLATTR_LOG_FORMAT=json)."""
    stopped = [line for line in map(json.loads, log_path.read_text().splitlines())
               if line["message"] == "stopped" and "flattrs_created" in line]
    if not stopped:
        raise SystemExit(f"the gateway did not stop cleanly:\n{log_path.read_text()}")
    return {"processes": len(stopped),
            "sent": sum(line["flattrs_created"] for line in stopped),
            "batches": sum(line["flattr_batches"] for line in stopped),
            "batched": sum(line["flattr_batch_requests"] for line in stopped)}


def run_gateway(url: str, redis_url: str, workers: int, seconds: int, connections: int,
                token_file: Path, tmp: Path) -> dict:
    """One timed wrk run against `flattr serve --workers N`, stopped by SIGTERM after it."""
    port = free_port()
    env = {"FLATTR_DATABASE_URL": url, "FLATTR_REDIS_URL": redis_url,
           "FLATTR_RATE_LIMIT_PER_MINUTE": "1000000000",
           "FLATTR_RATE_LIMIT_PER_MINUTE_PER_ADDRESS": "1000000000",
           "FLATTR_LOG_FORMAT": "json"}
    log_path = tmp / f"gateway-{workers}.log"
    stored_before = flattr_count(url)
    with process([str(ROOT / ".venv/bin/flattr"), "serve", "--no-demo", "--port", str(port),
                  "--workers", str(workers)], port, env, log_path):
        for _ in range(50):  # every process up (a worker answers once it listens)
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz").read()
        # Each process has its own token cache: a longer warm-up caches the tokens in each.
        wrk(port, 2 * workers, connections, token_file, warmup=True)
        measured = wrk(port, seconds, connections, token_file)
        time.sleep(1)  # requests still in flight when wrk stopped are answered now
    counts = gateway_counts(log_path)
    if counts["processes"] != workers:
        raise SystemExit(f"{counts['processes']} of {workers} processes stopped cleanly")
    return {**measured, **counts, "stored": flattr_count(url) - stored_before}


def flattr_count(url: str) -> int:
    with psycopg.connect(libpq(url)) as conn:
        return conn.execute("SELECT COUNT(*) FROM flattrs").fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=1,
                        help="also run the gateway as this many processes and compare")
    parser.add_argument("--database-url", default=os.environ.get(
        "FLATTR_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--redis-url", default=os.environ.get(
        "FLATTR_BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"))
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk")

    with scratch_database(args.database_url) as url, tempfile.TemporaryDirectory() as tmp:
        upgrade(url)
        token_file = Path(tmp) / "tokens.txt"
        token_file.write_text("\n".join(asyncio.run(make_members(url, args.members))) + "\n")

        bare_port = free_port()
        with process([sys.executable, str(HERE / "bare_handler.py"), str(bare_port)],
                     bare_port, {}, Path(tmp) / "bare.log"):
            wrk(bare_port, 2, args.connections, token_file, warmup=True)
            bare = wrk(bare_port, args.seconds, args.connections, token_file)

        gateway = run_gateway(url, args.redis_url, 1, args.seconds, args.connections,
                              token_file, Path(tmp))
        several = None
        if args.workers > 1:
            several = run_gateway(url, args.redis_url, args.workers, args.seconds,
                                  args.connections, token_file, Path(tmp))

    ratio = gateway["rate"] / bare["rate"]
    columns = [("bare handler", bare), ("gateway", gateway)]
    if several is not None:
        columns.append((f"gateway x{args.workers}", several))
    print(f"{'':24}" + "".join(f"{name:>14}" for name, _ in columns))
    for label, key, form in [("requests/s", "rate", ".0f"), ("p50 latency (ms)", "p50_ms", ".2f"),
                             ("p99 latency (ms)", "p99_ms", ".2f")]:
        print(f"{label:24}" + "".join(f"{figures[key]:>14{form}}" for _, figures in columns))
    print(f"{'answers 201/200/other':24}{'':>14}" + "".join(
        f"{figures['created']}/{figures['existed']}/{figures['other']}".rjust(14)
        for _, figures in columns[1:]))
    print(f"ratio gateway/bare: {ratio:.2f} (target >= {TARGET_RATIO:.2f}); "
          f"gateway p99 {gateway['p99_ms']:.1f} ms (target <= {TARGET_P99_MS:.0f} ms)")
    if several is not None:
        print(f"{args.workers} processes / 1 process: {several['rate'] / gateway['rate']:.2f} "
              f"({os.cpu_count()} cores, shared with wrk and PostgreSQL)")
    failed = False
    for name, figures in columns[1:]:
        print(f"{name}: batched writes {figures['batches']}, "
              f"{figures['batched'] / max(figures['batches'], 1):.1f} requests each on average")
        # wrk drops the answers in flight when it stops, so the server's own count of the
        # 201s it sent is the exact one; wrk's is a lower bound of it.
        print(f"{name}: durability: answered 201 {figures['sent']} times (wrk saw "
              f"{figures['created']} in the timed run), the database holds "
              f"{figures['stored']} new flattrs")
        failed = failed or figures["stored"] != figures["sent"]
    if failed:
        raise SystemExit("DURABILITY FAILED: the database does not hold exactly the 201s")
    if ratio < TARGET_RATIO or gateway["p99_ms"] > TARGET_P99_MS:
        print("TARGET MISSED")


if __name__ == "__main__":
    main()
