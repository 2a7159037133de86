"""Claim proofs: what counts as one, where the verifier may go, and what it holds meanwhile.

Proof sites are real aiohttp servers on 127.0.0.1 (the gateway's tests allow loopback).
"""

import asyncio
import socket
import time

import pytest
from aiohttp import web

from gateway import keys
from gateway.claim_proof import file_names, page_names

ANSWER_WITHIN_SECONDS = 10.0
# A request that fetches nothing answers within this while a verification parses a page.
HEALTH_WITHIN_SECONDS = 0.2


def serving(text: str, content_type: str = "text/plain", status: int = 200):
    async def handler(_request: web.Request) -> web.Response:
        return web.Response(text=text, content_type=content_type, status=status)

    return handler


def redirecting(location: str):
    async def handler(_request: web.Request) -> web.Response:
        raise web.HTTPFound(location)

    return handler


async def site(aiohttp_server, routes: dict[str, object], *, fallback=None):
    """A proof site: path -> handler; `fallback` answers every other path (an SPA)."""
    app = web.Application()
    seen: list[str] = []

    @web.middleware
    async def record(request: web.Request, handler):
        seen.append(request.path)
        return await handler(request)

    app.middlewares.append(record)
    for path, handler in routes.items():
        app.router.add_get(path, handler)
    if fallback is not None:
        app.router.add_get("/{tail:.*}", fallback)
    server = await aiohttp_server(app)
    server.seen = seen
    return server


async def verify(member, host: str, path_prefix: str = "/", status: int | None = None):
    claim = (await member.call("POST", "/claims", json={"host": host, "path_prefix": path_prefix},
                               status=201))["claim"]
    return await member.call("POST", f"/claims/{claim['id']}/verify", status=status)


# --- what a proof is --------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "names"), [
    ("carol", True),
    ("carol\n", True),
    ("  CaRoL \r\n", True),
    ("# Flattr accounts of this site\n\nsomeone\ncarol\n", True),
    ("\ufeffcarol\n", True),
    ("carol, dave", False),
    ("this site does not belong to carol", False),
    ("# carol", False),
    ("carolyn", False),
    ("", False),
])
def test_a_file_names_the_handle_on_a_line_of_its_own(text: str, names: bool) -> None:
    assert file_names(text, "carol") is names


META = '<meta name="flattr:account" content="erin">'


@pytest.mark.parametrize(("html", "names"), [
    (f"<html><head>{META}</head></html>", True),
    ("<head><META CONTENT='Erin' NAME='Flattr:Account'/></head>", True),
    ("<meta name=flattr:account content=erin>", True),
    (f"<body><p>{META}</p></body>", True),
    ('<meta name="flattr:account" content="erin" content="mallory">', True),
    ('<meta name="flattr:account" content="mallory" content="erin">', False),
    (f"<!-- {META} -->", False),
    (f"<!--\n{META}\n-->", False),
    (f"<script>var x = '{META}';</script>", False),
    (f"<textarea>{META}</textarea>", False),
    (f"<title>{META}</title>", False),
    (f"<template>{META}</template>", False),
    ("<p>&lt;meta name=\"flattr:account\" content=\"erin\"&gt;</p>", False),
    ('<meta name="description" content="erin">', False),
    ('<meta property="flattr:account" content="erin">', False),
    ("<p>erin</p>", False),
])
def test_a_page_names_the_handle_in_a_real_meta_element(html: str, names: bool) -> None:
    assert page_names(html, "erin") is names


async def test_a_page_that_answers_every_path_proves_nothing(aiohttp_server, make_client,
                                                             sign_up):
    # A single-page app answers 200 with its page on any path; anyone can get a word on it.
    spa = await site(aiohttp_server, {}, fallback=serving(
        "<html><body>\nLatest comment by mallory\n</body></html>", "text/html"))
    client = await make_client(claims_port=spa.port)
    mallory = await sign_up("mallory", on=client)
    refused = await verify(mallory, "localhost", status=422)
    assert refused["error"]["code"] == "claim_not_proven"


async def test_a_text_that_mentions_the_handle_proves_nothing(aiohttp_server, make_client,
                                                              sign_up):
    proof = await site(aiohttp_server, {"/.well-known/flattr.txt": serving(
        "Not found: mallory is not a page of this site")})
    client = await make_client(claims_port=proof.port)
    mallory = await sign_up("mallory", on=client)
    await verify(mallory, "localhost", status=422)


async def test_the_file_counts_only_as_plain_text(aiohttp_server, make_client, sign_up):
    proof = await site(aiohttp_server, {
        "/.well-known/flattr.txt": serving("carol\n", "text/html"),
    })
    client = await make_client(claims_port=proof.port)
    carol = await sign_up("carol", on=client)
    await verify(carol, "localhost", status=422)


async def test_a_meta_tag_in_a_comment_proves_nothing(aiohttp_server, make_client, sign_up):
    page = f"<html><head><!-- {META.replace('erin', 'mallory')} --></head></html>"
    proof = await site(aiohttp_server, {"/": serving(page, "text/html")})
    client = await make_client(claims_port=proof.port)
    mallory = await sign_up("mallory", on=client)
    await verify(mallory, "localhost", status=422)


async def test_a_plain_text_file_with_comments_proves_the_claim(aiohttp_server, make_client,
                                                                sign_up):
    proof = await site(aiohttp_server, {"/.well-known/flattr.txt": serving(
        "# who may claim this site\n\n  Carol  \n")})
    client = await make_client(claims_port=proof.port)
    carol = await sign_up("carol", on=client)
    assert (await verify(carol, "localhost", status=200))["claim"]["verified"] is True


# --- where the verifier goes ------------------------------------------------------------------


async def test_a_redirect_on_the_claimed_host_is_followed(aiohttp_server, make_client,
                                                          sign_up):
    proof = await site(aiohttp_server, {
        "/.well-known/flattr.txt": redirecting("/proofs/flattr.txt"),
        "/proofs/flattr.txt": serving("carol\n"),
    })
    client = await make_client(claims_port=proof.port)
    carol = await sign_up("carol", on=client)
    assert (await verify(carol, "localhost", status=200))["claim"]["verified"] is True


@pytest.mark.parametrize("target", ["http://127.0.0.1:{port}/flattr.txt",
                                    "http://localhost:{port}/flattr.txt"])
async def test_a_redirect_to_another_host_or_port_is_refused(aiohttp_server, make_client,
                                                             sign_up, target):
    # The other host (or port) names the member: it must not prove the claimed one.
    elsewhere = await site(aiohttp_server, {"/flattr.txt": serving("mallory\n")})
    location = target.format(port=elsewhere.port)
    claimed = await site(aiohttp_server, {
        "/.well-known/flattr.txt": redirecting(location), "/": redirecting(location)})
    client = await make_client(claims_port=claimed.port)
    mallory = await sign_up("mallory", on=client)
    refused = await verify(mallory, "localhost", status=422)
    assert "redirect" in refused["error"]["message"]
    assert elsewhere.seen == []


async def test_a_name_that_rebinds_to_loopback_is_not_reached(aiohttp_server, make_client,
                                                              sign_up, monkeypatch):
    """DNS rebinding: the name answers a public address when checked, loopback afterwards.

    No name server on a test machine changes its answers, so socket.getaddrinfo is replaced
    for this one name; every lookup, the check's and the connection's, goes through it.
    """
    proof = await site(aiohttp_server, {"/.well-known/flattr.txt": serving("mallory\n")})
    real_getaddrinfo = socket.getaddrinfo
    lookups: list[str] = []

    def rebinding(host, port, *args, **kwargs):
        if str(host).rstrip(".") != "rebind.example":
            return real_getaddrinfo(host, port, *args, **kwargs)
        address = "192.0.0.9" if not lookups else "127.0.0.1"  # 192.0.0.9 is global
        lookups.append(address)
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "",
                 (address, int(port)))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    client = await make_client(claims_port=proof.port, claims_allow_private=False,
                               claims_fetch_timeout_seconds=1.0)
    mallory = await sign_up("mallory", on=client)
    refused = await verify(mallory, "rebind.example", status=422)
    assert refused["error"]["code"] == "claim_not_proven"
    assert proof.seen == []
    assert lookups == ["192.0.0.9"]


async def test_an_address_literal_is_checked_as_well(make_client, sign_up):
    client = await make_client(claims_allow_private=False, claims_port=9)
    ivy = await sign_up("ivy", on=client)
    refused = await verify(ivy, "127.0.0.1", status=422)
    assert "127.0.0.1 is not a public address" in refused["error"]["message"]


# --- what the verifier holds ------------------------------------------------------------------


class SlowSite:
    """A proof site whose answers wait until the test releases them."""

    def __init__(self, handle: str) -> None:
        self.handle = handle
        self.arrived = asyncio.Event()
        self.release = asyncio.Event()

    async def answer(self, _request: web.Request) -> web.Response:
        self.arrived.set()
        await self.release.wait()
        return web.Response(text=self.handle, content_type="text/plain")


async def test_a_slow_proof_host_holds_no_database_connection(aiohttp_server, make_client,
                                                              sign_up):
    slow = SlowSite("kim")
    proof = await site(aiohttp_server, {"/.well-known/flattr.txt": slow.answer})
    client = await make_client(claims_port=proof.port, claims_fetch_timeout_seconds=30,
                               database_pool_size=1, database_pool_overflow=0)
    kim = await sign_up("kim", on=client)
    claim = (await kim.call("POST", "/claims", json={"host": "localhost"}, status=201))["claim"]
    verifying = asyncio.ensure_future(
        kim.call("POST", f"/claims/{claim['id']}/verify", status=200))
    try:
        await asyncio.wait_for(slow.arrived.wait(), ANSWER_WITHIN_SECONDS)
        assert client.server.app[keys.engine_key].pool.checkedout() == 0
        me = await asyncio.wait_for(kim.call("GET", "/me", status=200), ANSWER_WITHIN_SECONDS)
        assert me["member"]["handle"] == "kim"
    finally:
        slow.release.set()
        verified = await asyncio.wait_for(verifying, ANSWER_WITHIN_SECONDS)
    assert verified["claim"]["verified"] is True


async def test_verifications_beyond_the_cap_are_answered_busy(aiohttp_server, make_client,
                                                              sign_up):
    slow = SlowSite("lea")
    proof = await site(aiohttp_server, {"/.well-known/flattr.txt": slow.answer})
    client = await make_client(claims_port=proof.port, claims_fetch_timeout_seconds=30,
                               claims_verifications_at_once=1)
    lea = await sign_up("lea", on=client)
    max_ = await sign_up("max", on=client)
    first = (await lea.call("POST", "/claims", json={"host": "localhost"}, status=201))["claim"]
    second = (await max_.call("POST", "/claims", json={"host": "127.0.0.1"}, status=201))[
        "claim"]
    verifying = asyncio.ensure_future(
        lea.call("POST", f"/claims/{first['id']}/verify", status=200))
    try:
        await asyncio.wait_for(slow.arrived.wait(), ANSWER_WITHIN_SECONDS)
        response = await asyncio.wait_for(
            client.post(f"/api/v1/claims/{second['id']}/verify", headers=max_.auth),
            ANSWER_WITHIN_SECONDS)
        assert response.status == 503
        assert response.headers["Retry-After"] == "5"
        assert (await response.json())["error"]["code"] == "busy"
    finally:
        slow.release.set()
        verified = await asyncio.wait_for(verifying, ANSWER_WITHIN_SECONDS)
    assert verified["claim"]["verified"] is True


# --- what the verifier reads ------------------------------------------------------------------


def serving_bytes(body: bytes, content_type: str):
    """An answer whose Content-Type is sent as written (aiohttp would encode a text with it)."""
    async def handler(_request: web.Request) -> web.Response:
        return web.Response(body=body, headers={"Content-Type": content_type})

    return handler


async def test_a_page_of_unclosed_tags_does_not_hold_the_loop(aiohttp_server, make_client,
                                                              sign_up):
    # html.parser is quadratic on "<a<a<a...": seconds for the allowed 256 KiB.
    page = "<a" * (128 * 1024)
    proof = await site(aiohttp_server, {"/": serving(page, "text/html")})
    client = await make_client(claims_port=proof.port)
    nina = await sign_up("nina", on=client)
    verifying = asyncio.ensure_future(verify(nina, "localhost", status=422))
    latencies = []
    try:
        while not verifying.done():
            began = time.perf_counter()
            assert (await client.get("/healthz")).status == 200
            latencies.append(time.perf_counter() - began)
            await asyncio.sleep(0.01)
    finally:
        refused = await asyncio.wait_for(verifying, ANSWER_WITHIN_SECONDS)
    assert refused["error"]["code"] == "claim_not_proven"
    assert latencies and max(latencies) < HEALTH_WITHIN_SECONDS, latencies


async def test_a_meta_tag_in_the_head_of_a_big_page_is_found(aiohttp_server, make_client,
                                                             sign_up):
    filler = "<p>" + "<a" * 1000 + "</p>\n"
    page = (f"<html><head><title>Otto's site</title>{META.replace('erin', 'otto')}</head>"
            f"<body>{filler * 60}</body></html>")
    assert len(page) > 100 * 1024
    proof = await site(aiohttp_server, {"/": serving(page, "text/html")})
    client = await make_client(claims_port=proof.port)
    otto = await sign_up("otto", on=client)
    assert (await verify(otto, "localhost", status=200))["claim"]["verified"] is True


def test_only_the_head_of_a_page_is_read() -> None:
    assert page_names(f"<head>{META}</HEAD><body>" + "<a" * 100_000, "erin") is True
    assert page_names(f"<head></head ><body>{META}</body>", "erin") is False
    assert page_names(f"<header></header>{META}", "erin") is True
    assert page_names("<p>" + "x" * 40 * 1024 + META, "erin") is False


@pytest.mark.parametrize(("path", "body", "content_type"), [
    ("/.well-known/flattr.txt", b"pat\n", "text/plain; charset=utf8mb4"),
    ("/", META.replace("erin", "pat").encode(), "text/html; charset=utf8mb4"),
])
async def test_an_unknown_charset_is_read_as_utf8(aiohttp_server, make_client, sign_up, path,
                                                  body, content_type):
    proof = await site(aiohttp_server, {path: serving_bytes(body, content_type)})
    client = await make_client(claims_port=proof.port)
    pat = await sign_up("pat", on=client)
    assert (await verify(pat, "localhost", status=200))["claim"]["verified"] is True
