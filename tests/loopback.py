"""An aiohttp application served on 127.0.0.1 by a test's stand-in of another service."""

from aiohttp import web
from aiohttp.test_utils import TestServer


class LoopbackServer:
    server: TestServer | None = None

    async def serve(self, app: web.Application) -> None:
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()

    @property
    def root(self) -> str:
        """http://127.0.0.1:PORT, without a slash at the end."""
        assert self.server is not None, "serve() first"
        return str(self.server.make_url("")).rstrip("/")

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()
