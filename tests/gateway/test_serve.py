"""`flattr serve` as an operator runs it: processes on a port, stopped by a signal."""

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aiohttp
import pytest
from raw_http import exchange, request_head
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from support import require_redis

START_WITHIN_SECONDS = 30.0
STOP_WITHIN_SECONDS = 10.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def wait_for_port(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_WITHIN_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read()
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        writer.close()
        return
    raise AssertionError(f"flattr serve did not listen within {START_WITHIN_SECONDS} s")


async def test_flattr_serve_answers_unparsable_requests_in_json_and_stops_on_sigterm(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLATTR_")}
    env["FLATTR_DATABASE_URL"] = f"sqlite:///{tmp_path / 'flattr.db'}"
    flattr = Path(sys.executable).parent / "flattr"
    process = subprocess.Popen(
        [str(flattr), "serve", "--no-demo", "--port", str(port)], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        await wait_for_port(port, process)
        healthy = await exchange("127.0.0.1", port, request_head("GET", "/healthz", {}))
        assert healthy.status == 200, healthy.body
        refused = await exchange("127.0.0.1", port, b"FOO / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert refused.status == 501, refused.body
        assert refused.json()["error"]["code"] == "bad_request"
        process.send_signal(signal.SIGTERM)
        assert process.wait(STOP_WITHIN_SECONDS) == 0, process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()


# --- processes fit for production: graceful stop under load, workers, refusals -------------

LOAD_CLIENTS = 16
LOAD_REQUESTS_MAX = 20_000  # a client's bound, whatever happens to the server
RESTART_WITHIN_SECONDS = 20.0


def serve_env(database_url: str, redis_url: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLATTR_")}
    env.update({
        "FLATTR_DATABASE_URL": database_url, "FLATTR_LOG_FORMAT": "json",
        # All clients come from 127.0.0.1: limits that never refuse.
        "FLATTR_RATE_LIMIT_PER_MINUTE": "100000000",
        "FLATTR_RATE_LIMIT_PER_MINUTE_PER_ADDRESS": "100000000",
    })
    if redis_url is not None:
        env["FLATTR_REDIS_URL"] = redis_url
        env["FLATTR_REDIS_NAMESPACE"] = f"flattr-test-{uuid.uuid4().hex[:10]}"
    return env


class Served:
    """A `flattr serve` process whose standard error (JSON log lines) is read as it comes."""

    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process = process
        self.port = port
        self.stderr: list[str] = []
        self.stdout: list[str] = []
        self.readers = [asyncio.create_task(self._read(process.stderr, self.stderr)),
                        asyncio.create_task(self._read(process.stdout, self.stdout))]

    @classmethod
    async def start(cls, env: dict[str, str], *options: str) -> "Served":
        port = free_port()
        flattr = Path(sys.executable).parent / "flattr"
        process = await asyncio.create_subprocess_exec(
            str(flattr), "serve", "--no-demo", "--port", str(port), *options, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        return cls(process, port)

    @staticmethod
    async def _read(stream: asyncio.StreamReader, into: list[str]) -> None:
        async for line in stream:
            into.append(line.decode().rstrip("\n"))

    def logs(self) -> list[dict]:
        return [json.loads(line) for line in self.stderr]  # every line is one JSON object

    def logged(self, message_start: str) -> list[dict]:
        return [line for line in self.logs() if line["message"].startswith(message_start)]

    async def until_logged(self, predicate, what: str) -> None:
        deadline = time.monotonic() + START_WITHIN_SECONDS
        while not predicate():
            assert self.process.returncode is None, "\n".join(self.stderr)
            assert time.monotonic() < deadline, f"no {what} in\n" + "\n".join(self.stderr)
            await asyncio.sleep(0.05)

    async def listening(self, processes: int) -> None:
        await self.until_logged(lambda: len(self.logged("listening")) == processes,
                                f"{processes} processes listening")

    async def sigterm(self) -> float:
        """Stop it as an operator would; when the signal was sent."""
        self.process.send_signal(signal.SIGTERM)
        signalled_at = time.monotonic()
        assert await self.stopped() == 0, "\n".join(self.stderr)
        return signalled_at

    async def stopped(self, within: float = STOP_WITHIN_SECONDS) -> int:
        code = await asyncio.wait_for(self.process.wait(), within)
        await asyncio.gather(*self.readers)
        return code

    async def close(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        await asyncio.gather(*self.readers)


class Load:
    """Clients flattring distinct URLs as fast as answers come, each on its keep-alive
    connection (a new one after an error), remembering every 201 and when it came."""

    def __init__(self, port: int, tokens: list[str]) -> None:
        self.url = f"http://127.0.0.1:{port}/api/v1/flattrs"
        self.tokens = tokens
        self.created: dict[int, float] = {}  # flattr id → when its 201 arrived
        self.other: list[int] = []  # statuses other than 201
        self.errors = 0  # connections refused or cut
        self.stop = asyncio.Event()
        self.clients = [asyncio.create_task(self._client(n)) for n in range(LOAD_CLIENTS)]

    async def _client(self, n: int) -> None:
        auth = {"Authorization": f"Bearer {self.tokens[n % len(self.tokens)]}"}
        session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
        try:
            for i in range(LOAD_REQUESTS_MAX):
                if self.stop.is_set():
                    return
                try:
                    async with session.post(self.url, headers=auth, json={
                            "url": f"https://load.example/{n}/{i}"}) as response:
                        body = await response.json()
                except (aiohttp.ClientError, OSError, TimeoutError):
                    self.errors += 1
                    await session.close()
                    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
                    await asyncio.sleep(0.02)
                    continue
                if response.status == 201:
                    self.created[body["flattr"]["id"]] = time.monotonic()
                else:
                    self.other.append(response.status)
        finally:
            await session.close()

    def created_since(self, instant: float) -> int:
        return sum(1 for answered in self.created.values() if answered > instant)

    async def until_created(self, count: int) -> None:
        deadline = time.monotonic() + START_WITHIN_SECONDS
        while len(self.created) < count:
            assert time.monotonic() < deadline, f"only {len(self.created)} flattrs made"
            await asyncio.sleep(0.05)

    async def finish(self) -> None:
        self.stop.set()
        await asyncio.gather(*self.clients)


async def every_201_stored(load: Load, engine: AsyncEngine, signalled_at: float) -> set[int]:
    """Check the answers of a load stopped by SIGTERM; the flattrs stored."""
    assert load.other == [], load.other
    # Requests that were in flight at the signal were answered after it, not dropped.
    assert load.created_since(signalled_at) > 0, "no request in flight was answered"
    async with engine.connect() as conn:
        stored = set((await conn.execute(text("SELECT id FROM flattrs"))).scalars())
    assert set(load.created) <= stored, f"{len(set(load.created) - stored)} 201s were lost"
    return stored


async def make_tokens(privileged, count: int) -> list[str]:
    return [(await privileged(f"loader{n}", "read,flattr"))[1] for n in range(count)]


async def test_sigterm_under_load_answers_the_requests_in_flight_and_loses_no_201(
    database_url, engine, privileged
):
    served = await Served.start(serve_env(database_url), "--workers", "1")
    try:
        await served.listening(1)
        load = Load(served.port, await make_tokens(privileged, 8))
        try:
            await load.until_created(200)
            signalled_at = await served.sigterm()
        finally:
            await load.finish()
    finally:
        await served.close()
    stored = await every_201_stored(load, engine, signalled_at)
    assert stored == set(load.created), "flattrs stored that no client was told of"
    [stopped] = served.logged("stopped")
    assert stopped["flattrs_created"] == len(stored), stopped
    assert served.logged("stopping: no new connections")


@pytest.mark.postgres_only
async def test_two_workers_share_the_port_a_killed_one_comes_back_and_sigterm_stops_all(
    database_url, engine, privileged
):
    served = await Served.start(serve_env(database_url, require_redis()), "--workers", "2")
    try:
        await served.listening(2)
        started = {line["worker"]: line["worker_pid"] for line in served.logged("worker ")
                   if line["message"].startswith(f"worker {line['worker']} started")}
        assert len(started) == 2 and len(set(started.values())) == 2, started
        load = Load(served.port, await make_tokens(privileged, 8))
        try:
            await load.until_created(100)
            os.kill(started[1], signal.SIGKILL)
            killed_at = time.monotonic()

            def restarted() -> bool:
                again = [line["worker_pid"] for line in served.logged("worker 1 started")]
                return len(again) == 2 and any(
                    line["pid"] == again[1] for line in served.logged("listening"))

            # Meanwhile the port keeps answering: new connections go to the other worker. A
            # connection the kernel queued on the killed worker's socket before it was gone is
            # reset (SO_REUSEPORT gives it no other owner): that is what kill -9 costs.
            answers = []
            while not restarted():
                try:
                    answers.append((await exchange("127.0.0.1", served.port, request_head(
                        "GET", "/healthz", {}))).status)
                except ConnectionResetError:
                    answers.append("reset")
                assert time.monotonic() - killed_at < RESTART_WITHIN_SECONDS, served.stderr
                await asyncio.sleep(0.05)
            assert 200 in answers and set(answers) <= {200, "reset"}, answers
            assert answers.count("reset") <= 3, answers
            assert load.created_since(killed_at + 0.5) > 0, "no flattr while one worker was down"
            [died] = served.logged("worker 1 (pid")
            assert died["exit_code"] == -signal.SIGKILL and died["level"] == "WARNING", died
            # The kernel spreads new connections over both again (keep-alive ones stay).
            for _ in range(40):
                fresh = await exchange("127.0.0.1", served.port, request_head(
                    "GET", "/healthz", {}))
                assert fresh.status == 200, fresh.body
            await load.until_created(len(load.created) + 100)
            signalled_at = await served.sigterm()
        finally:
            await load.finish()
    finally:
        await served.close()
    await every_201_stored(load, engine, signalled_at)
    # Both workers of the end, the new one too, served and stopped cleanly.
    stopped = [line for line in served.logged("stopped") if "requests" in line]
    assert len(stopped) == 2 and all(line["requests"] > 0 for line in stopped), stopped
    assert sum(line["flattrs_created"] for line in stopped) <= len(load.created)
    for pid in [*started.values(), *(line["pid"] for line in stopped)]:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


async def test_a_waiting_bot_is_answered_at_once_when_the_gateway_stops(
    database_url, privileged
):
    _, bot_token = await privileged("relay", "bot")
    served = await Served.start(serve_env(database_url), "--workers", "1")
    try:
        await served.listening(1)
        async with aiohttp.ClientSession() as session:
            lease = asyncio.create_task(session.post(
                f"http://127.0.0.1:{served.port}/api/v1/bot/outbox/lease",
                json={"platform": "telegram", "wait": 30},
                headers={"Authorization": f"Bearer {bot_token}"}))
            await asyncio.sleep(1.0)  # the lease is waiting
            assert not lease.done()
            served.process.send_signal(signal.SIGTERM)
            signalled_at = time.monotonic()
            response = await asyncio.wait_for(lease, 5)
            assert response.status == 200 and (await response.json())["messages"] == []
            assert await served.stopped() == 0
            assert time.monotonic() - signalled_at < 5, "the long poll held the stop"
    finally:
        await served.close()


@pytest.mark.parametrize(("url", "workers", "refusal"), [
    ("sqlite:///{tmp}/f.db", "2", "needs PostgreSQL"),
    ("postgresql://postgres@127.0.0.1:5432/test", "2", "--allow-local-limits"),
    ("postgresql://postgres@127.0.0.1:5432/test", "0", "Invalid value for '--workers'"),
])
def test_serve_refuses_what_it_cannot_do_well_in_one_line(tmp_path, url, workers, refusal):
    env = serve_env(url.format(tmp=tmp_path))
    flattr = Path(sys.executable).parent / "flattr"
    done = subprocess.run([str(flattr), "serve", "--workers", workers, "--port",
                           str(free_port())], env=env, capture_output=True, text=True,
                          timeout=START_WITHIN_SECONDS)
    assert done.returncode != 0
    assert refusal in done.stderr, done.stderr
    if workers != "0":
        assert done.stderr.count("\n") == 1 and done.stdout == "", done.stderr


@pytest.mark.postgres_only
async def test_several_workers_without_redis_start_when_allowed(database_url):
    served = await Served.start(serve_env(database_url), "--workers", "2",
                                "--allow-local-limits")
    try:
        await served.listening(2)
        ready = await exchange("127.0.0.1", served.port, request_head("GET", "/readyz", {}))
        assert ready.status == 200 and ready.json()["redis"] == "not configured", ready.body
        served.process.send_signal(signal.SIGINT)
        assert await served.stopped() == 0, "\n".join(served.stderr)
    finally:
        await served.close()


# SIGTERM early in the start: before the parent serves, as it starts its workers, before
# they listen. Each instant is a line of the parent's output, the signal sent as it is read.
EARLY_INSTANTS = {
    "announced": lambda line: line.startswith("Flattr gateway on"),
    "parent's first log line": lambda line: line.startswith("{"),
    "worker 1 spawned": lambda line: '"worker 1 started' in line,
    "worker 2 spawned": lambda line: '"worker 2 started' in line,
    "first listening": lambda line: '"listening' in line,
}


def sigterm_at(env: dict[str, str], workers: str, instant) -> tuple[int, list[str]]:
    """Start `flattr serve`, send SIGTERM as the first line `instant` picks is read; its exit
    status and every line it wrote."""
    flattr = Path(sys.executable).parent / "flattr"
    process = subprocess.Popen(
        [str(flattr), "serve", "--no-demo", "--port", str(free_port()), "--workers", workers,
         "--allow-local-limits"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    lines: list[str] = []
    try:
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if instant(line):
                process.send_signal(signal.SIGTERM)
                break
        lines.extend(line.rstrip("\n") for line in process.stdout)
        return process.wait(STOP_WITHIN_SECONDS), lines
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()


@pytest.mark.postgres_only
@pytest.mark.parametrize("instant", EARLY_INSTANTS)
def test_sigterm_early_in_the_start_stops_cleanly(database_url, instant):
    code, lines = sigterm_at(serve_env(database_url), "2", EARLY_INSTANTS[instant])
    output = "\n".join(lines)
    assert code == 0, output
    assert "Traceback" not in output and "not cleanly" not in output, output
    logged = [json.loads(line) for line in lines if line.startswith("{")]
    started = [line["worker_pid"] for line in logged if "worker_pid" in line]
    # Each worker started, however young, stopped as asked: it was not killed half made.
    stopped = [line["pid"] for line in logged if line["message"] == "stopped"
               and line["logger"] == "gateway.server"]
    assert sorted(stopped) == sorted(started), output
    assert logged[-1]["message"] == "stopped" and logged[-1]["logger"] == "gateway.supervisor"


def test_sigterm_before_one_process_serves_stops_it_cleanly(database_url):
    code, lines = sigterm_at(serve_env(database_url), "1", EARLY_INSTANTS["announced"])
    output = "\n".join(lines)
    assert code == 0 and "Traceback" not in output, output
    assert json.loads(lines[-1])["message"] == "stopped", output
