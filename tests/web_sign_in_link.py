"""A bot's one-time sign-in link used as a browser uses it: the page, then its one form."""

import re
from html import unescape
from urllib.parse import urlsplit

from aiohttp import ClientSession, CookieJar
from aiohttp.test_utils import TestServer

CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


async def use_sign_in_link(server: TestServer, url: str) -> tuple[int, str, str]:
    """Open the link's page on `server` with a new cookie jar and press its button: the
    final status, path and page."""
    path = urlsplit(url).path
    assert re.fullmatch(r"/sign-in/link/[A-Za-z0-9_-]{43}", path), url
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as browser:
        async with browser.get(server.make_url(path)) as shown:
            assert shown.status == 200, shown.status
            csrf = CSRF_FIELD.search(await shown.text())
        assert csrf, "no form on the sign-in link's page"
        async with browser.post(server.make_url(path), data={"csrf": unescape(csrf[1])}) as used:
            return used.status, used.url.path, await used.text()
