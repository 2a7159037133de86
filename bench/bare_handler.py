"""The baseline of bench/clicks.py: an aiohttp handler that parses the same JSON and answers."""

import json
import sys

from aiohttp import web


async def flattr(request: web.Request) -> web.Response:
    body = json.loads(await request.read())
    return web.json_response({"created": True, "flattr": {"thing": {"key": body["url"]}}},
                             status=201)


def main() -> None:
    app = web.Application()
    app.router.add_post("/api/v1/flattrs", flattr)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)


if __name__ == "__main__":
    main()
