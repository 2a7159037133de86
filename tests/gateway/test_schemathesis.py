"""Schemathesis against the served OpenAPI document, on SQLite and on PostgreSQL.

A real gateway listens on a loopback port, served from a thread with its own event loop (the
test itself is synchronous: schemathesis drives it with hypothesis and `requests`). Every
generated call carries a bearer token fit for the operation, so the calls get past
authentication and reach the handlers. Checked on every answer: no 5xx, a documented status,
the documented content type, a body that matches the documented schema.

The tests are generated at collection time from the document of an app that is built but not
served (it needs no database); each live gateway is checked to serve exactly that document.
(`schemathesis.pytest.from_fixture` would load the served one lazily, but in schemathesis
4.32.5 it fails under pytest 9.2: "'Function' object has no attribute '_nodeid'".) Each
operation is one test item per backend, with its own fresh database and gateway.

Only the checks named in CHECKS run: the others (positive_data_acceptance,
negative_data_rejection, ignored_auth, ...) judge business rules the document does not state,
e.g. that a well-formed URL string is accepted, and some of them re-send requests.

POST /admin/settlements stays in: the generated periods are empty past months (or refused), so
each settlement is quick.

Nothing may leave 127.0.0.1:
- POST /claims/{id}/verify is left out: it resolves and fetches the claimed host, and the
  hosts here are random (and the seeded claim's host is a real-looking name).
- `requests` ignores proxy settings from the environment (trust_env=False).
- name resolution is guarded for the whole test: resolving any host but loopback (or the
  test database's host) is refused and fails the test. `requests` and the gateway's claim
  fetcher (aiohttp's ThreadedResolver, loop.getaddrinfo) both resolve through
  socket.getaddrinfo, which the guard replaces.
"""

import asyncio
import copy
import ipaddress
import os
import socket
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from core import claims, flattrs, funding, members, subscriptions, tokens
from core.settings import Settings
from gateway import keys
from gateway.app import create_app
from gateway.openapi import API_PREFIX, openapi_document
from gateway.settings import GatewaySettings

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Left out of the run (see the module docstring): the one route that fetches from the network.
NOT_FUZZED = ("claims_verify_claim",)
LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}
EXAMPLES = int(os.environ.get("FLATTR_SCHEMATHESIS_EXAMPLES", "25"))


@dataclass(frozen=True)
class Tokens:
    member: str  # read, flattr, account; funded, with a flattr, a claim, a subscription
    revoker: str  # read, account: the token DELETE /tokens/{id} may revoke, itself included
    admin: str  # read, admin
    bot: str  # bot

    def for_operation(self, operation: dict[str, Any], method: str, path: str) -> str:
        if method == "DELETE" and path == API_PREFIX + "/tokens/{id}":
            return self.revoker
        scope = operation.get("x-scope")
        if isinstance(scope, list):  # alternatives: the first one says whose token
            scope = scope[0]
        return {"admin": self.admin, "bot": self.bot}.get(scope, self.member)


class LiveGateway:
    """The gateway served on 127.0.0.1:<free port> by a thread running its own event loop."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.runner = web.AppRunner(app, access_log=None)
        self.ready = threading.Event()
        self.failed: BaseException | None = None
        self.port = 0
        self.thread = threading.Thread(target=self._serve, name="live-gateway", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.thread.start()
        if not self.ready.wait(timeout=30):
            raise RuntimeError("the gateway did not start within 30 s")
        if self.failed is not None:
            raise RuntimeError("the gateway did not start") from self.failed

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        """Run a coroutine on the gateway's loop (its engine belongs to that loop)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)

    def stop(self) -> None:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "the gateway thread did not stop"

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._start())
        except BaseException as error:
            self.failed = error
            self.loop.run_until_complete(self.runner.cleanup())
            self.loop.close()
            self.ready.set()
            return
        self.ready.set()
        try:
            self.loop.run_forever()
        finally:
            self.loop.run_until_complete(self.runner.cleanup())
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.run_until_complete(self.loop.shutdown_default_executor())
            self.loop.close()

    async def _start(self) -> None:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = self.runner.addresses[0][1]


async def make_accounts(engine: AsyncEngine) -> Tokens:
    """Members and tokens as the operator's command makes them, with something to act on."""
    async with engine.begin() as conn:
        member = await members.create_member(conn, "fuzzer", email="fuzzer@example.com",
                                             password="a long password")
        await funding.credit(conn, member.id, 50_000_000, idempotency_key="fuzz:credit")
        await flattrs.flattr(conn, member.id, "https://seed.example/post")
        await claims.create_claim(conn, member.id, "seed.example", "/blog/")
        await subscriptions.subscribe(conn, member.id, "https://seed.example/other", 3)
        await members.link_identity(conn, member.id, "telegram:4242")
        member_token = await tokens.issue_token(
            conn, member.id, tokens.parse_scopes("read,flattr,account"))
        revoker = await members.create_member(conn, "revoker")
        revoker_token = await tokens.issue_token(
            conn, revoker.id, tokens.parse_scopes("read,account"))
        admin = await members.create_member(conn, "operator", is_admin=True)
        admin_token = await tokens.issue_token(
            conn, admin.id, tokens.parse_scopes("read,admin"), may_grant_privileged=True)
        bot = await members.create_member(conn, "botty")
        bot_token = await tokens.issue_token(
            conn, bot.id, tokens.parse_scopes("bot"), may_grant_privileged=True)
    return Tokens(member_token.token, revoker_token.token, admin_token.token, bot_token.token)


@pytest.fixture
def only_loopback(monkeypatch: pytest.MonkeyPatch, database_url: str) -> list[str]:
    """Fail any name resolution of a host that is not loopback (nor the test database)."""
    allowed = set(LOOPBACK_NAMES)
    database_host = make_url(database_url).host
    if database_host:
        allowed.add(database_host)
    refused: list[str] = []
    real_getaddrinfo = socket.getaddrinfo

    def loopback_only(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        if name is not None and name not in allowed and not _is_loopback_address(name):
            refused.append(name)
            raise OSError(f"the schemathesis test may not resolve {name!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", loopback_only)
    return refused


def _is_loopback_address(name: str) -> bool:
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@pytest.fixture
def live_gateway(database_url: str, only_loopback: list[str]) -> Iterator[LiveGateway]:
    app = create_app(
        Settings(database_url=database_url, redis_url=None),
        GatewaySettings(demo=False, rate_limit_per_minute=100_000,
                        rate_limit_per_minute_per_address=100_000,
                        claims_allow_private=False,
                        outbox_wait_max_seconds=0.2),  # a lease's long poll: briefly
    )
    gateway = LiveGateway(app)
    gateway.start()
    try:
        yield gateway
    finally:
        gateway.stop()
    assert only_loopback == [], f"tried to resolve non-loopback hosts: {only_loopback}"


@pytest.fixture
def http(live_gateway: LiveGateway) -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.trust_env = False  # no proxy from the environment: loopback, directly
        yield session


@pytest.fixture
def accounts(live_gateway: LiveGateway) -> Tokens:
    return live_gateway.run(make_accounts(live_gateway.app[keys.engine_key]))


def generated_document() -> dict[str, Any]:
    """The document the tests are generated from, before any server runs (collection time).

    It does not depend on the storage; `served_document` below checks that each live gateway
    serves exactly this document.
    """
    app = create_app(Settings(database_url="sqlite://", redis_url=None))
    return openapi_document(app)


DOCUMENT = generated_document()
# An explicit configuration: a schemathesis.toml found by discovery must not change the run.
CONFIG = schemathesis.Config.from_dict({"request-timeout": 20,
                                        "generation": {"database": "none"}})
schema = schemathesis.openapi.from_dict(copy.deepcopy(DOCUMENT), config=CONFIG).exclude(
    operation_id=list(NOT_FUZZED))


@pytest.fixture
def served_document(live_gateway: LiveGateway, http: requests.Session) -> dict[str, Any]:
    response = http.get(live_gateway.url + API_PREFIX + "/openapi.json", timeout=10)
    assert response.status_code == 200, response.text
    served = response.json()
    assert served == DOCUMENT, "the gateway serves another document than the tests use"
    return served


def test_only_the_network_fetching_operation_is_left_out():
    schema.validate()
    fuzzed = {result.ok().label for result in schema.get_all_operations()}
    documented = {f"{method.upper()} {path}" for path, item in DOCUMENT["paths"].items()
                  for method in item}
    assert documented - fuzzed == {"POST /api/v1/claims/{id}/verify"}


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,  # a call goes through HTTP and a database: its time varies
    database=None,  # no stored examples: they would name ids of another run's database
    suppress_health_check=[
        # One gateway and database per operation and backend, shared by its examples, on
        # purpose: the examples build on each other's state like a client's calls would.
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,  # generating large bodies on a 2-core machine
        HealthCheck.filter_too_much,  # schemathesis filters some generated cases itself
    ],
)
def test_the_gateway_answers_as_its_document_says(case, live_gateway, http, accounts,
                                                  served_document):
    operation = case.operation.definition.raw
    token = accounts.for_operation(operation, case.method.upper(), case.operation.path)
    case.call_and_validate(base_url=live_gateway.url, session=http,
                           headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)
