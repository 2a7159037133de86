"""docker-compose.yml, checked without a Docker engine: `docker-compose config` validates it,
then every service runs as the process it names (its command, with its environment) against
this machine's PostgreSQL and Redis, waits for its healthcheck, and stops on SIGTERM."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import yaml
from sqlalchemy.engine import make_url

from support import redis_url_for_tests, unavailable

ROOT = Path(__file__).resolve().parents[2]
FLATTR = Path(sys.executable).parent / "flattr"
SERVICES = {"postgres", "redis", "migrate", "gateway", "worker", "telegram", "discord"}
INFRASTRUCTURE = {"postgres", "redis"}  # the machine's own stand in for these
HEALTHY_WITHIN_SECONDS = 60.0
STOP_WITHIN_SECONDS = 30.0


def docker_compose() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        unavailable("docker-compose is not installed (Debian: apt-get install docker-compose)")
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def project(tmp_path: Path, **overrides: str) -> Path:
    """The compose file beside a .env made from .env.example, as an operator makes it."""
    folder = tmp_path / "project"
    folder.mkdir()
    shutil.copy(ROOT / "docker-compose.yml", folder / "docker-compose.yml")
    lines = []
    for line in (ROOT / ".env.example").read_text().splitlines():
        name = line.split("=", 1)[0]
        if not line.startswith("#") and "=" in line and name in overrides:
            line = f"{name}={overrides.pop(name)}"
        lines.append(line)
    lines += [f"{name}={value}" for name, value in overrides.items()]
    (folder / ".env").write_text("\n".join(lines) + "\n")
    return folder


def resolved(folder: Path) -> dict:
    """The compose file as compose reads it: .env interpolated, env_file merged in."""
    done = subprocess.run([docker_compose(), "config"], cwd=folder, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


def test_the_compose_file_is_valid_and_complete(tmp_path):
    config = resolved(project(tmp_path, POSTGRES_PASSWORD="s3cret"))
    services = config["services"]
    assert set(services) == SERVICES
    assert services["telegram"]["profiles"] == ["telegram"]
    assert services["discord"]["profiles"] == ["discord"]
    for name in ("postgres", "redis", "gateway"):
        assert services[name]["healthcheck"]["test"], name
    for name in ("gateway", "worker"):
        assert services[name]["depends_on"]["migrate"]["condition"] == \
            "service_completed_successfully"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["migrate"]["command"] == ["db", "upgrade"]
    gateway = services["gateway"]
    assert "--workers" in gateway["command"]
    assert gateway["environment"]["FLATTR_DATABASE_URL"] == \
        "postgresql://flattr:s3cret@postgres:5432/flattr"
    assert gateway["environment"]["FLATTR_REDIS_URL"] == "redis://redis:6379/0"
    assert "/healthz" in " ".join(gateway["healthcheck"]["test"])
    assert "postgres-data" in config["volumes"]
    for name in SERVICES - INFRASTRUCTURE:  # signals reach flattr, and in time
        assert services[name]["init"] is True
        assert services[name]["stop_grace_period"] == "45s", name


def test_each_service_gets_only_the_secrets_it_uses(tmp_path):
    config = resolved(project(tmp_path, POSTGRES_PASSWORD="s3cret", FLATTR_TELEGRAM_TOKEN="t0k",
                              FLATTR_DISCORD_TOKEN="d1s", FLATTR_GATEWAY_TOKEN="g4t"))
    services = config["services"]
    for bot, token, other in (("telegram", "t0k", "d1s"), ("discord", "d1s", "t0k")):
        environment = services[bot]["environment"]
        assert token in environment.values() and "g4t" in environment.values()
        assert not [value for value in environment.values()
                    if "s3cret" in str(value) or value == other], bot
        assert "FLATTR_DATABASE_URL" not in environment
    assert "s3cret" in services["gateway"]["environment"]["FLATTR_DATABASE_URL"]


def test_no_secret_is_written_in_the_compose_file_and_the_password_is_required(tmp_path):
    # Only ever read from .env: with every ${…} taken out, no secret has a value left.
    text = re.sub(r"\$\{[^}]*\}", "", (ROOT / "docker-compose.yml").read_text())
    for name in ("POSTGRES_PASSWORD", "FLATTR_TELEGRAM_TOKEN", "FLATTR_DISCORD_TOKEN",
                 "FLATTR_GATEWAY_TOKEN", "FLATTR_SMTP_URL"):
        assert not re.search(rf"{name}[ \t]*[:=][ \t]*\S", text), f"{name} has a value here"
    assert "password" not in text.lower().replace("postgres_password", "")
    done = subprocess.run([docker_compose(), "config"], cwd=project(tmp_path),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "set POSTGRES_PASSWORD in .env" in done.stderr


def test_env_example_names_only_settings_flattr_reads(tmp_path):
    """Each FLATTR_* line of .env.example is a setting some part of the platform reads."""
    sources = "\n".join(path.read_text() for folder in ("core", "gateway", "bots", "worker",
                                                       "flattr_cli")
                        for path in (ROOT / folder).rglob("*.py"))
    compose = (ROOT / "docker-compose.yml").read_text()
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.startswith("FLATTR_"):
            name = line.split("=", 1)[0]
            field = name.removeprefix("FLATTR_").lower()
            assert field in sources or name in compose, f"{name} is read by nothing"


# --- every service as its process ---------------------------------------------------------


@dataclass
class Started:
    name: str
    process: subprocess.Popen
    log: Path


@pytest.fixture
def scratch_database() -> Iterator[str]:
    server = make_url(os.environ.get("FLATTR_TEST_DATABASE_URL",
                                     "postgresql://postgres@127.0.0.1:5432/test"))
    if (server.host, server.port or 5432) != ("127.0.0.1", 5432):
        unavailable("the compose test maps the postgres service to 127.0.0.1:5432")
    name = f"flattr_compose_{uuid.uuid4().hex[:10]}"
    admin_url = server.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=3) as admin:
            admin.execute(f"CREATE DATABASE {name}")
    except psycopg.OperationalError as error:
        unavailable(f"no PostgreSQL on 127.0.0.1:5432 ({error})")
    yield name
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def start(service: str, config: dict, tmp_path: Path) -> Started:
    """The service's command after the image's ENTRYPOINT (`flattr`), with its environment."""
    spec = config["services"][service]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLATTR_", "POSTGRES_"))}
    env.update({name: str(value) for name, value in spec["environment"].items()})
    log = tmp_path / f"{service}.log"
    with log.open("w") as out:
        process = subprocess.Popen([str(FLATTR), *spec["command"]], env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    return Started(service, process, log)


def healthy(spec: dict) -> bool:
    """The service's healthcheck, run as compose runs it (`python` is this interpreter)."""
    test = spec["healthcheck"]["test"]
    assert test[0] == "CMD", test
    command = [sys.executable if part == "python" else part for part in test[1:]]
    return subprocess.run(command, capture_output=True, timeout=10).returncode == 0


def wait_until_healthy(started: Started, spec: dict) -> None:
    deadline = time.monotonic() + HEALTHY_WITHIN_SECONDS
    while time.monotonic() < deadline:
        assert started.process.poll() is None, started.log.read_text()
        if healthy(spec):
            return
        time.sleep(0.5)
    raise AssertionError(f"{started.name} not healthy: {started.log.read_text()[-2000:]}")


def call(port: int, method: str, path: str, body: dict | None = None,
         token: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1{path}", method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json",
                 **({"Authorization": f"Bearer {token}"} if token else {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_every_service_runs_as_the_process_it_names(tmp_path, scratch_database):
    redis_url = redis_url_for_tests()
    if redis_url is None or make_url(redis_url).host != "127.0.0.1":
        unavailable("the compose test maps the redis service to 127.0.0.1:6379")
    port = free_port()
    config = resolved(project(
        tmp_path, POSTGRES_USER="postgres", POSTGRES_PASSWORD="unused",
        POSTGRES_DB=scratch_database,
        FLATTR_POSTGRES_HOST="127.0.0.1", FLATTR_REDIS_HOST="127.0.0.1",
        FLATTR_GATEWAY_PORT=str(port), FLATTR_PUBLISHED_PORT=str(port),
        FLATTR_PUBLIC_URL=f"http://127.0.0.1:{port}"))
    services = config["services"]
    running: list[Started] = []
    try:
        migrate = start("migrate", config, tmp_path)
        assert migrate.process.wait(60) == 0, migrate.log.read_text()

        gateway = start("gateway", config, tmp_path)
        running.append(gateway)
        running.append(start("worker", config, tmp_path))
        wait_until_healthy(gateway, services["gateway"])

        status, _ = call(port, "POST", "/members", {"handle": "compose", "password":
                                                    "a long enough password"})
        assert status == 201
        status, issued = call(port, "POST", "/tokens", {"handle": "compose", "password":
                                                        "a long enough password"})
        assert status == 201, issued
        status, flattred = call(port, "POST", "/flattrs", {"url": "https://example.org/"},
                                token=issued["token"])
        assert status == 201, flattred
        for started in running:  # still up after a request went through them all
            assert started.process.poll() is None, started.log.read_text()

        for started in running:
            started.process.send_signal(signal.SIGTERM)
        for started in running:
            code = started.process.wait(STOP_WITHIN_SECONDS)
            assert code == 0, f"{started.name}: {code}\n{started.log.read_text()[-2000:]}"
    finally:
        for started in running:
            if started.process.poll() is None:
                os.killpg(started.process.pid, signal.SIGKILL)
                started.process.wait()
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{scratch_database}") as db:
        assert db.execute("SELECT COUNT(*) FROM flattrs").fetchone() == (1,)


@pytest.mark.parametrize("service", ["telegram", "discord"])
def test_the_bots_commands_are_ones_flattr_accepts(tmp_path, service):
    """The bots start only with their profile and a token (not reachable here): their
    commands, as the compose file gives them, are commands of `flattr`."""
    config = resolved(project(tmp_path, POSTGRES_PASSWORD="unused"))
    command = config["services"][service]["command"]
    done = subprocess.run([str(FLATTR), *command, "--help"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
