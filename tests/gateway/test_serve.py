"""`flattr serve` as an operator runs it: a process on a port, stopped by a signal."""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from raw_http import exchange, request_head

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
