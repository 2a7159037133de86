"""The baseline of bench/clicks.py: an aiohttp handler that parses the same JSON and answers.

    bare_handler.py PORT [PROCESSES]

With PROCESSES > 1 it forks that many processes sharing the port (SO_REUSEPORT), as
`flattr serve --workers N` does; a SIGTERM to the first stops them all.
"""

import json
import os
import signal
import sys

from aiohttp import web


async def flattr(request: web.Request) -> web.Response:
    body = json.loads(await request.read())
    return web.json_response({"created": True, "flattr": {"thing": {"key": body["url"]}}},
                             status=201)


def serve(port: int, reuse_port: bool) -> None:
    app = web.Application()
    app.router.add_post("/api/v1/flattrs", flattr)
    web.run_app(app, host="127.0.0.1", port=port, reuse_port=reuse_port, print=None,
                access_log=None)


def main() -> None:
    port = int(sys.argv[1])
    processes = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    children = []
    for _ in range(processes - 1):
        pid = os.fork()
        if pid == 0:
            serve(port, reuse_port=True)
            os._exit(0)
        children.append(pid)
    try:
        serve(port, reuse_port=processes > 1)
    finally:
        for pid in children:
            os.kill(pid, signal.SIGTERM)
            os.waitpid(pid, 0)


if __name__ == "__main__":
    main()
