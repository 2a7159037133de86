"""Fetching a claim's proof from the claimed host, carefully.

`/.well-known/flattr.txt` served as text/plain with a line that is the handle, or a
`<meta name="flattr:account" content="HANDLE">` element of the page. Timeouts, a size
limit, at most three redirects and all of them on the claimed scheme, host and port.
Host names are resolved once, by the session's resolver, which refuses private addresses
unless the deployment allows them: the connection goes to the address that was checked.
A page is parsed only up to its `</head>` (32 KiB at most), in a worker thread.
"""

import asyncio
import ipaddress
import re
import socket
from dataclasses import dataclass
from html.parser import HTMLParser

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from gateway.bodies import read_capped
from gateway.settings import GatewaySettings

MAX_REDIRECTS = 3
REDIRECTS = (301, 302, 303, 307, 308)
META_NAME = "flattr:account"
HTML_TYPES = ("text/html", "application/xhtml+xml")
# html.parser takes time quadratic in some inputs ("<a<a<a..."): half a second for 32 KiB,
# half a minute for 256 KiB. The meta element belongs in the head, near the start.
HEAD_MAX_CHARACTERS = 32 * 1024
HEAD_END = re.compile(r"</head[\s/>]", re.IGNORECASE)


@dataclass(frozen=True)
class Proof:
    found: bool
    where: str
    detail: str


@dataclass(frozen=True)
class Page:
    status: int
    content_type: str
    text: str


class NotPublic(OSError):
    """A host that is, or resolves to, an address the verifier must not reach."""


def _is_public(address: str) -> bool:
    return ipaddress.ip_address(address).is_global


class PublicResolver(AbstractResolver):
    """Resolves a name once and answers only addresses it checked.

    aiohttp connects to what its resolver answers, so a name that answers a public address
    to a first lookup and a private one to a second (DNS rebinding) cannot slip through.
    """

    def __init__(self, allow_private: bool) -> None:
        self._resolver = aiohttp.ThreadedResolver()
        self._allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._resolver.resolve(host, port, family)
        if not self._allow_private and not all(_is_public(r["host"]) for r in found):
            raise NotPublic(f"{host.removesuffix('.')} is not a public address")
        return found

    async def close(self) -> None:
        await self._resolver.close()


def verifier_session(settings: GatewaySettings) -> aiohttp.ClientSession:
    """The HTTP client of claim verification (the only one that fetches members' sites)."""
    return aiohttp.ClientSession(
        headers={"User-Agent": "Flattr claim verifier"},
        connector=aiohttp.TCPConnector(
            limit=20, ttl_dns_cache=60,
            resolver=PublicResolver(allow_private=settings.claims_allow_private)),
    )


def _refusal(url: URL, origin: URL, settings: GatewaySettings) -> str | None:
    """Why the verifier will not fetch this URL, or None."""
    if (url.scheme, url.host, url.port) != (origin.scheme, origin.host, origin.port):
        return f"refused to follow a redirect away from {origin.origin()} to {url}"
    # An address literal is not resolved, so the resolver does not see it.
    host = (url.host or "").strip("[]")
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        return None
    if not settings.claims_allow_private and not literal.is_global:
        return f"{host} is not a public address"
    return None


async def fetch_limited(
    session: aiohttp.ClientSession, url: str, settings: GatewaySettings
) -> Page | str:
    """The page at a URL of the claimed origin, or a reason why it could not be fetched."""
    origin = target = URL(url)
    for _ in range(MAX_REDIRECTS + 1):
        refused = _refusal(target, origin, settings)
        if refused is not None:
            return refused
        try:
            async with session.get(
                target, allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=settings.claims_fetch_timeout_seconds),
            ) as response:
                if response.status in REDIRECTS:
                    target = target.join(URL(response.headers.get("Location", "")))
                    continue
                raw = await read_capped(response.content, settings.claims_fetch_max_bytes)
                if raw is None:
                    return f"{target} is larger than {settings.claims_fetch_max_bytes} bytes"
                return Page(response.status, response.content_type,
                            _decoded(raw, response.charset))
        except aiohttp.ClientConnectorError as error:
            if isinstance(error.os_error, NotPublic):
                return str(error.os_error)
            return f"could not fetch {target}: {error.__class__.__name__}"
        except (aiohttp.ClientError, TimeoutError, UnicodeError, ValueError) as error:
            return f"could not fetch {target}: {error.__class__.__name__}"
    return f"more than {MAX_REDIRECTS} redirects from {url}"


def _decoded(raw: bytes, charset: str | None) -> str:
    try:
        return raw.decode(charset or "utf-8", "replace")
    except LookupError:  # a charset Python does not know: the handle is ASCII all the same
        return raw.decode("utf-8", "replace")


def base_url(host: str, settings: GatewaySettings) -> str:
    port = f":{settings.claims_port}" if settings.claims_port else ""
    return f"{settings.claims_scheme}://{host}{port}"


def file_names(text: str, handle: str) -> bool:
    """Whether a flattr.txt names the handle: a line that is the handle, blank and '#'
    comment lines aside, case aside."""
    wanted = handle.lower()
    for line in text.removeprefix("\ufeff").splitlines():
        line = line.strip()
        if line and not line.startswith("#") and line.lower() == wanted:
            return True
    return False


class _MetaAccounts(HTMLParser):
    """The contents of the page's `<meta name="flattr:account">` elements.

    A real parser: comments, scripts and the text of title, textarea and the like are not
    elements, and neither is what a template holds.
    """

    TEXT_ONLY = frozenset({"title", "textarea", "xmp", "iframe", "noembed", "noframes",
                           "noscript", "plaintext"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.accounts: list[str] = []
        self._templates = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.TEXT_ONLY:
            self.set_cdata_mode(tag)
        elif tag == "template":
            self._templates += 1
        elif tag == "meta" and not self._templates:
            values: dict[str, str] = {}
            for name, value in attrs:
                values.setdefault(name, value or "")  # the first of twins counts, as in browsers
            if values.get("name", "").strip().lower() == META_NAME:
                self.accounts.append(values.get("content", "").strip())

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # HTML ignores the "/" of "<textarea/>": it opens the element all the same.
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag == "template" and self._templates:
            self._templates -= 1


def page_names(html: str, handle: str) -> bool:
    """Whether the page's head has a meta element naming the handle (run it in a thread)."""
    head = html[:HEAD_MAX_CHARACTERS]
    end = HEAD_END.search(head)
    parser = _MetaAccounts()
    parser.feed(head if end is None else head[:end.start()])
    parser.close()
    return any(account.lower() == handle.lower() for account in parser.accounts)


async def find_proof(
    session: aiohttp.ClientSession, host: str, path_prefix: str, handle: str,
    settings: GatewaySettings,
) -> Proof:
    well_known = base_url(host, settings) + "/.well-known/flattr.txt"
    fetched = await fetch_limited(session, well_known, settings)
    if (isinstance(fetched, Page) and fetched.status == 200
            and fetched.content_type == "text/plain" and file_names(fetched.text, handle)):
        return Proof(True, well_known, "the file names you")
    page = base_url(host, settings) + path_prefix
    fetched_page = await fetch_limited(session, page, settings)
    if (isinstance(fetched_page, Page) and fetched_page.status == 200
            and fetched_page.content_type in HTML_TYPES
            and await asyncio.to_thread(page_names, fetched_page.text, handle)):
        return Proof(True, page, "the page's meta tag names you")
    reason = fetched if isinstance(fetched, str) else fetched_page
    detail = reason if isinstance(reason, str) else "neither proof names you"
    return Proof(False, well_known, detail)
