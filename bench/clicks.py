"""Click path benchmark: the gateway on PostgreSQL + Redis against a bare aiohttp handler.

Both are driven by wrk with the same load (64 connections, many members flattring many
URLs) in the same run. Prints both request rates, their ratio and the gateway's p50/p99
latency, then checks that the database holds exactly the flattrs answered 201.

    .venv/bin/python bench/clicks.py [--seconds 10] [--connections 64] [--members 2000]
"""

import argparse
import asyncio
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
def process(command: list[str], port: int, env: dict[str, str]):
    proc = subprocess.Popen(command, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if proc.poll() is not None:
                    raise SystemExit(f"{command[0]} exited: {proc.stderr.read()}") from None
                time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


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


def gateway_counts(port: int) -> dict[str, int]:
    """The 201s the gateway sent to POST /api/v1/flattrs and its batched writes (/metrics)."""
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()

    def count(pattern: str) -> int:
        found = re.search(pattern + r" (\d+)", metrics)
        return int(found.group(1)) if found else 0

    return {
        "created": count(r'flattr_http_requests_total\{method="POST",route="/api/v1/flattrs",'
                         r'status="201"\}'),
        "batches": count("flattr_flattr_batches_total"),
        "batched": count("flattr_flattr_batch_requests_total"),
    }


def flattr_count(url: str) -> int:
    with psycopg.connect(libpq(url)) as conn:
        return conn.execute("SELECT COUNT(*) FROM flattrs").fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--members", type=int, default=2000)
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
                     bare_port, {}):
            wrk(bare_port, 2, args.connections, token_file, warmup=True)
            bare = wrk(bare_port, args.seconds, args.connections, token_file)

        port = free_port()
        env = {"FLATTR_DATABASE_URL": url, "FLATTR_REDIS_URL": args.redis_url,
               "FLATTR_RATE_LIMIT_PER_MINUTE": "1000000000",
               "FLATTR_RATE_LIMIT_PER_MINUTE_PER_ADDRESS": "1000000000"}
        with process([str(ROOT / ".venv/bin/flattr"), "serve", "--no-demo", "--port",
                      str(port)], port, env):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz").read()
            wrk(port, 2, args.connections, token_file, warmup=True)
            gateway = wrk(port, args.seconds, args.connections, token_file)
            time.sleep(1)  # requests still in flight when wrk stopped are answered now
            counts = gateway_counts(port)
            sent = counts["created"]
        stored = flattr_count(url)

    ratio = gateway["rate"] / bare["rate"]
    print(f"{'':24}{'bare handler':>14}{'gateway':>14}")
    print(f"{'requests/s':24}{bare['rate']:>14.0f}{gateway['rate']:>14.0f}")
    print(f"{'p50 latency (ms)':24}{bare['p50_ms']:>14.2f}{gateway['p50_ms']:>14.2f}")
    print(f"{'p99 latency (ms)':24}{bare['p99_ms']:>14.2f}{gateway['p99_ms']:>14.2f}")
    print(f"{'answers 201/200/other':24}{'':>14}"
          f"{gateway['created']:>6}/{gateway['existed']}/{gateway['other']}")
    print(f"ratio gateway/bare: {ratio:.2f} (target >= {TARGET_RATIO:.2f}); "
          f"gateway p99 {gateway['p99_ms']:.1f} ms (target <= {TARGET_P99_MS:.0f} ms)")
    print(f"batched writes: {counts['batches']}, "
          f"{counts['batched'] / max(counts['batches'], 1):.1f} requests each on average")
    # wrk drops the answers in flight when it stops, so the server's own count of the 201s
    # it sent is the exact one; wrk's is a lower bound of it.
    print(f"durability: the gateway answered 201 {sent} times (wrk saw {gateway['created']} "
          f"in the timed run), the database holds {stored} flattrs")
    if stored != sent:
        raise SystemExit("DURABILITY FAILED: the database does not hold exactly the 201s")
    if ratio < TARGET_RATIO or gateway["p99_ms"] > TARGET_P99_MS:
        print("TARGET MISSED")


if __name__ == "__main__":
    main()
