"""HTTP/1.1 over a bare socket: requests cut where a test wants them cut, answers read back.

aiohttp's client always sends a well-formed request in one go; these helpers send bytes as
given, in pieces with pauses between them, to a real server on 127.0.0.1.
"""

import asyncio
import contextlib
import json
from dataclasses import dataclass
from typing import Any

ANSWER_WITHIN_SECONDS = 10.0


@dataclass(frozen=True)
class RawAnswer:
    status: int
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def read_answer(reader: asyncio.StreamReader) -> RawAnswer:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return RawAnswer(int(status_line.split()[1]), headers, body)


async def exchange(host: str, port: int, *pieces: bytes, pause: float = 0.2) -> RawAnswer:
    """Send the pieces with a pause between them, then read one answer (bounded in time)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for number, piece in enumerate(pieces):
            if number:
                await asyncio.sleep(pause)
            writer.write(piece)
            await writer.drain()
        return await asyncio.wait_for(read_answer(reader), ANSWER_WITHIN_SECONDS)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def request_head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in
                                                               headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body (b"" gives the last, empty one)."""
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"
