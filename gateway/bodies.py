"""Reading a whole body, request or response, with a cap on its size."""

from aiohttp import StreamReader


async def read_capped(stream: StreamReader, max_bytes: int) -> bytes | None:
    """The body up to its end, or None as soon as it is longer than max_bytes.

    `stream.read(n)` gives what has arrived so far: a body in several TCP segments or chunks
    needs a read until the end. Never more than max_bytes + 1 bytes are read.
    """
    parts: list[bytes] = []
    size = 0
    while part := await stream.read(max_bytes + 1 - size):
        parts.append(part)
        size += len(part)
        if size > max_bytes:
            return None
    return b"".join(parts)
