"""The gateway as bytes reach it over a socket: bodies in pieces, chunked bodies."""

import json

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
