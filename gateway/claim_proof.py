"""Fetching a claim's proof from the claimed host, carefully.

`/.well-known/flattr.txt` naming the handle, or the page's
`<meta name="flattr:account" content="HANDLE">`. Timeouts, a size limit, at most three
redirects, each target resolved and refused when private unless the deployment allows it.
"""

import asyncio
import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import aiohttp

from gateway.settings import GatewaySettings

MAX_REDIRECTS = 3
META = re.compile(
    r"""<meta\s[^>]*name\s*=\s*["']flattr:account["'][^>]*>""", re.IGNORECASE
)
CONTENT = re.compile(r"""content\s*=\s*["']([^"']*)["']""", re.IGNORECASE)


@dataclass(frozen=True)
class Proof:
    found: bool
    where: str
    detail: str


async def _is_public(host: str, port: int) -> bool:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return False
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            return False
    return True


async def fetch_limited(
    session: aiohttp.ClientSession, url: str, settings: GatewaySettings
) -> tuple[int, str] | str:
    """The status and text of a URL, or a reason why it could not be fetched."""
    for _ in range(MAX_REDIRECTS + 1):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return f"refused to fetch {url}"
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if not settings.claims_allow_private and not await _is_public(parts.hostname, port):
            return f"{parts.hostname} is not a public address"
        try:
            async with session.get(
                url, allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=settings.claims_fetch_timeout_seconds),
            ) as response:
                if response.status in (301, 302, 303, 307, 308):
                    url = urljoin(url, response.headers.get("Location", ""))
                    continue
                raw = await response.content.read(settings.claims_fetch_max_bytes + 1)
                if len(raw) > settings.claims_fetch_max_bytes:
                    return f"{url} is larger than {settings.claims_fetch_max_bytes} bytes"
                return response.status, raw.decode(response.charset or "utf-8", "replace")
        except (aiohttp.ClientError, TimeoutError, UnicodeError) as error:
            return f"could not fetch {url}: {error.__class__.__name__}"
    return f"more than {MAX_REDIRECTS} redirects from {url}"


def base_url(host: str, settings: GatewaySettings) -> str:
    port = f":{settings.claims_port}" if settings.claims_port else ""
    return f"{settings.claims_scheme}://{host}{port}"


async def find_proof(
    session: aiohttp.ClientSession, host: str, path_prefix: str, handle: str,
    settings: GatewaySettings,
) -> Proof:
    wanted = handle.lower()
    well_known = base_url(host, settings) + "/.well-known/flattr.txt"
    fetched = await fetch_limited(session, well_known, settings)
    if isinstance(fetched, tuple) and fetched[0] == 200:
        names = {word.strip().lower() for word in re.split(r"[\s,]+", fetched[1]) if word}
        if wanted in names:
            return Proof(True, well_known, "the file names you")
    page = base_url(host, settings) + path_prefix
    fetched_page = await fetch_limited(session, page, settings)
    if isinstance(fetched_page, tuple) and fetched_page[0] == 200:
        for tag in META.findall(fetched_page[1]):
            content = CONTENT.search(tag)
            if content and content.group(1).strip().lower() == wanted:
                return Proof(True, page, "the page's meta tag names you")
    reason = fetched if isinstance(fetched, str) else fetched_page
    detail = reason if isinstance(reason, str) else "neither proof names you"
    return Proof(False, well_known, detail)
