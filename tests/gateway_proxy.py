"""A forwarding proxy in front of a real gateway, on loopback, that can misbehave on demand.

The bots' tests point their gateway client at it to see what a bot does when the gateway is
down, slow to answer, rate-limiting or losing answers, while every request that gets through
reaches the real gateway and its database. It records each request it was sent.

    proxy.fail_next(2, status=503)     # the next two requests get a 503 without reaching it
    proxy.lose_next(1)                 # forwarded, then answered 502: the answer is lost
    proxy.limit_next(1, retry_after=1) # a 429 with Retry-After
    proxy.down = True                  # every request gets a 503 until set back
"""

from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from loopback import LoopbackServer

HOP_BY_HOP = {"host", "content-length", "transfer-encoding", "connection"}


@dataclass
class Seen:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    outcome: str  # forwarded, failed, lost, limited, down


@dataclass
class GatewayProxy(LoopbackServer):
    target: str  # the gateway's root, http://127.0.0.1:PORT
    down: bool = False
    seen: list[Seen] = field(default_factory=list)
    _plan: list[tuple[str, int, float, str | None]] = field(default_factory=list)
    _session: aiohttp.ClientSession | None = None

    # Each of these applies to the next requests of `path` (of any path when None).
    def fail_next(self, count: int, status: int = 503, path: str | None = None) -> None:
        self._plan.extend([("failed", status, 0.0, path)] * count)

    def lose_next(self, count: int, path: str | None = None) -> None:
        self._plan.extend([("lost", 502, 0.0, path)] * count)

    def limit_next(self, count: int, retry_after: float, path: str | None = None) -> None:
        self._plan.extend([("limited", 429, retry_after, path)] * count)

    def _step(self, path: str) -> tuple[str, int, float, str | None] | None:
        for n, step in enumerate(self._plan):
            if step[3] in (None, path):
                return self._plan.pop(n)
        return None

    def requests(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]

    @property
    def url(self) -> str:
        return self.root

    async def start(self) -> "GatewayProxy":
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._session = aiohttp.ClientSession()
        await self.serve(app)
        return self

    async def close(self) -> None:
        await super().close()
        if self._session is not None:
            await self._session.close()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        step = self._step(request.path)
        outcome = "down" if self.down else (step[0] if step else "forwarded")
        self.seen.append(Seen(request.method, request.path, request.query_string,
                              dict(request.headers), body, outcome))
        if outcome == "down":
            return _error(503, "busy", "the gateway is down")
        if outcome == "failed":
            return _error(step[1], "busy", "the proxy failed this request")
        if outcome == "limited":
            return _error(429, "rate_limited", "slow down", {"Retry-After": f"{step[2]:g}"})
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        async with self._session.request(request.method, self.target + request.path_qs,
                                         data=body or None, headers=headers) as answer:
            payload = await answer.read()
            status, content_type = answer.status, answer.content_type
            passed = {k: v for k, v in answer.headers.items()
                      if k.lower() in ("retry-after", "idempotent-replayed")}
        if outcome == "lost":
            return _error(502, "bad_gateway", "the answer was lost on the way")
        return web.Response(status=status, body=payload, content_type=content_type,
                            headers=passed)


def _error(status: int, code: str, message: str,
           headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status,
                             headers=headers)
