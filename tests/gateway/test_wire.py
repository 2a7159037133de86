"""The gateway as bytes reach it over a socket: bodies in pieces, chunked bodies."""

import json

import pytest
from raw_http import chunk, exchange, request_head

FLATTR = json.dumps({"url": "https://blog.example/wire"}).encode()


def flattr_head(token: str, **headers: str) -> bytes:
    return request_head("POST", "/api/v1/flattrs", {
        "Authorization": f"Bearer {token}", "Content-Type": "application/json", **headers})


async def test_a_body_that_arrives_in_two_pieces_is_read_whole(client, sign_up):
    ann = await sign_up("ann")
    head = flattr_head(ann.token, **{"Content-Length": str(len(FLATTR))})
    answer = await exchange(client.host, client.port, head + FLATTR[:10], FLATTR[10:])
    assert answer.status == 201, answer.body
    assert answer.json()["flattr"]["thing"]["key"] == "https://blog.example/wire"


async def test_a_chunked_body_is_read_to_its_last_chunk(client, sign_up):
    ben = await sign_up("ben")
    head = flattr_head(ben.token, **{"Transfer-Encoding": "chunked"})
    answer = await exchange(client.host, client.port, head + chunk(FLATTR[:10]),
                            chunk(FLATTR[10:]) + chunk(b""))
    assert answer.status == 201, answer.body
    assert answer.json()["flattr"]["thing"]["key"] == "https://blog.example/wire"


async def test_the_second_chunk_of_a_body_is_not_dropped(client, sign_up):
    # The first chunk alone is a valid request; with the second the body is not JSON.
    cleo = await sign_up("cleo")
    head = flattr_head(cleo.token, **{"Transfer-Encoding": "chunked"})
    answer = await exchange(client.host, client.port, head + chunk(FLATTR),
                            chunk(b' {"url": "https://blog.example/other"}') + chunk(b""))
    assert answer.status == 400, answer.body
    assert answer.json()["error"]["code"] == "invalid_json"
    listed = await cleo.call("GET", "/flattrs", status=200)
    assert listed["flattrs"] == []


async def test_a_body_over_the_cap_is_refused_without_waiting_for_its_end(client, sign_up):
    dan = await sign_up("dan")
    head = flattr_head(dan.token, **{"Transfer-Encoding": "chunked"})
    # 70 KiB of a body that never ends: the answer must come once the cap is passed.
    answer = await exchange(client.host, client.port, head + chunk(b" " * 40_000),
                            chunk(b" " * 30_000))
    assert answer.status == 413, answer.body
    assert answer.json()["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize("rest", [b"", b"zz\r\n"], ids=["stops", "breaks off"])
async def test_a_body_that_stops_arriving_is_answered_in_bounded_time(make_client, sign_up,
                                                                      rest):
    # Half a body, then nothing (or a chunk that is not one: aiohttp then ends nothing).
    client = await make_client(request_body_timeout_seconds=1.0)
    eve = await sign_up("eve", on=client)
    head = flattr_head(eve.token, **{"Transfer-Encoding": "chunked"})
    answer = await exchange(client.host, client.port, head + chunk(FLATTR[:10]), rest)
    assert answer.status == 408, answer.body
    assert answer.json()["error"]["code"] == "request_timeout"


GET = b"GET /api/v1/healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
UNPARSABLE = {
    "unknown method": (b"FOO / HTTP/1.1\r\nHost: x\r\n\r\n", 501, "method"),
    "garbage method": (b"G@T / HTTP/1.1\r\nHost: x\r\n\r\n", 501, "method"),
    "header too large": (GET + b"X-Big: " + b"a" * 10_000 + b"\r\n\r\n", 431, "header"),
    "too many headers": (GET + b"".join(b"X-%d: 1\r\n" % i for i in range(200)) + b"\r\n",
                         431, "too many headers"),
    "request line too long": (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414,
                              "request line"),
    "malformed request line": (b"GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n", 400, "not valid HTTP"),
    "malformed header": (GET + b"Bad Header: y\r\n\r\n", 400, "not valid HTTP"),
    "bad content length": (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400,
                           "not valid HTTP"),
    "unknown HTTP version": (b"GET / HTTP/9.9\r\nHost: x\r\n\r\n", 505, "HTTP/1.1"),
    "TLS on the plain port": (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40, 400,
                              "HTTPS"),
}


@pytest.mark.parametrize(("raw", "status", "said"), UNPARSABLE.values(), ids=UNPARSABLE.keys())
async def test_a_request_aiohttp_cannot_parse_gets_the_json_error_shape(client, raw, status,
                                                                         said):
    answer = await exchange(client.host, client.port, raw)
    assert answer.status == status, answer.body
    assert answer.headers["content-type"].startswith("application/json")
    error = answer.json()["error"]
    assert error["code"] == "bad_request"
    assert said.lower() in error["message"].lower()
