"""Canonical URL keys: equivalent spellings of the same web page map to the same string."""

import ipaddress
import re
from urllib.parse import SplitResult, unquote, urlsplit

from core.errors import DomainError, InvalidHost, InvalidUrl

MAX_URL_LENGTH = 2048
MAX_HOST_LENGTH = 253
MAX_LABEL_LENGTH = 63

DEFAULT_PORTS = {"http": 80, "https": 443}
TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "mc_cid",
        "mc_eid",
        "igshid",
        "_ga",
        "_gl",
    }
)
TRACKING_PREFIXES = ("utm_",)

_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_SUB_DELIMS = frozenset("!$&'()*+,;=")
# Characters that may appear literally in a path segment (RFC 3986 pchar) or a query.
_PATH_SAFE = _UNRESERVED | _SUB_DELIMS | frozenset(":@/")
_QUERY_SAFE = _PATH_SAFE | frozenset("?")
_HEX = frozenset("0123456789abcdefABCDEF")

_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SURROGATE_RE = re.compile(r"[\ud800-\udfff]")
_LABEL_RE = re.compile(r"[a-z0-9_-]+")
_PORT_RE = re.compile(r"[0-9]{1,5}")
_HOST_FORBIDDEN_RE = re.compile(r"[\s:/?#@\[\]%\\]")
# Most pages' addresses are canonical already: lower-case http(s), a plain lower-case host,
# no port, user, escape, query or fragment, and (checked apart) no dot segment. Such a URL
# is its own canonical form, found without taking it apart.
_PLAIN_URL_RE = re.compile(
    r"https?://([a-z0-9_-]{1,63}(?:\.[a-z0-9_-]{1,63})*)(/[A-Za-z0-9._~!$&'()*+,;=:@/-]*)"
)


def canonical_url(raw: str) -> str:
    """The canonical form of an http(s) URL; raises InvalidUrl when it cannot be one."""
    return canonical_parts(raw)[0]


def canonical_parts(raw: str) -> tuple[str, str, str]:
    """The canonical URL, its host (without port; IPv6 without brackets) and its path
    (without query)."""
    if isinstance(raw, str) and len(raw) <= MAX_URL_LENGTH:
        plain = _PLAIN_URL_RE.fullmatch(raw)
        if plain is not None and "/." not in plain[2] and len(plain[1]) <= MAX_HOST_LENGTH:
            return raw, plain[1], plain[2]
    return _normalised_parts(raw)


def _normalised_parts(raw: str) -> tuple[str, str, str]:
    text = _checked_text(raw)
    parts = _split(text)
    host, port = _authority(parts.netloc, parts.scheme)
    path = _remove_dot_segments(_normalise_escapes(parts.path, _PATH_SAFE) or "/")
    query = _canonical_query(parts.query)
    url = f"{parts.scheme}://{host}{port}{path}{'?' + query if query else ''}"
    if len(url) > MAX_URL_LENGTH:
        raise InvalidUrl(f"URL is longer than {MAX_URL_LENGTH} characters once normalised")
    return url, host.removeprefix("[").removesuffix("]"), path


def normalise_host(raw: str) -> str:
    """Lower-cased punycode form of a bare host name such as "Bücher.de." (for claims)."""
    if not isinstance(raw, str):
        raise InvalidHost(f"host must be a string, not {raw!r}")
    if not raw:
        raise InvalidHost("host is empty")
    if _HOST_FORBIDDEN_RE.search(raw) or _CONTROL_RE.search(raw):
        raise InvalidHost(
            f"{_shorten(raw)!r} is not a bare host name; give only e.g. example.com, "
            "without scheme, port, path or spaces"
        )
    return _ascii_host(raw, InvalidHost)


def _checked_text(raw: str) -> str:
    if not isinstance(raw, str):
        raise InvalidUrl(f"URL must be a string, not {type(raw).__name__}")
    text = raw.strip()
    if not text:
        raise InvalidUrl("URL is empty")
    if len(text) > MAX_URL_LENGTH:
        raise InvalidUrl(f"URL is longer than {MAX_URL_LENGTH} characters")
    if _CONTROL_RE.search(text):
        raise InvalidUrl("URL contains control characters")
    if _SURROGATE_RE.search(text):
        raise InvalidUrl("URL is not valid Unicode text")
    return text


def _split(text: str) -> SplitResult:
    try:
        parts = urlsplit(_backslashes_as_slashes(text))
    except ValueError as error:
        raise InvalidUrl(f"{_shorten(text)!r} is not a valid URL: {error}") from None
    if not parts.scheme:
        raise InvalidUrl(f"{_shorten(text)!r} is not an absolute URL; it must start with https://")
    if parts.scheme not in DEFAULT_PORTS:
        raise InvalidUrl(f"only http and https URLs are accepted, not {_shorten(parts.scheme)}:")
    if not parts.netloc:
        raise InvalidUrl(f"{_shorten(text)!r} has no host")
    return parts


def _backslashes_as_slashes(text: str) -> str:
    """Read a backslash before the query of an http(s) URL as a slash, as browsers do.

    The WHATWG URL standard does so for these schemes, so "https://a.example\\@b.example/" is
    a page of a.example whose path starts "/@b.example/"; the standard library would read
    b.example as its host.
    """
    scheme, colon, _ = text.partition(":")
    if not colon or scheme.lower() not in DEFAULT_PORTS:
        return text
    end = len(text)
    for mark in "?#":
        found = text.find(mark, 0, end)
        if found >= 0:
            end = found
    return text[:end].replace("\\", "/") + text[end:]


def _authority(netloc: str, scheme: str) -> tuple[str, str]:
    """Canonical host and ":port" suffix ("" for the default port); userinfo is dropped."""
    hostport = netloc.rpartition("@")[2]
    if hostport.startswith("["):
        literal, _, port_text = hostport[1:].partition("]")
        host = _ipv6_host(literal)
        if port_text and not port_text.startswith(":"):
            raise InvalidUrl(f"unexpected {port_text!r} after the IPv6 address")
        port_text = port_text[1:]
    else:
        name, _, port_text = hostport.partition(":")
        if not name:
            raise InvalidUrl("URL has no host")
        host = _ascii_host(name, InvalidUrl)
    return host, _port_suffix(port_text, scheme)


def _ipv6_host(literal: str) -> str:
    try:
        address = ipaddress.IPv6Address(literal)
    except ValueError:
        raise InvalidUrl(f"[{_shorten(literal)}] is not a valid IPv6 address") from None
    if address.scope_id:
        raise InvalidUrl("IPv6 zone identifiers are not accepted")
    return f"[{address.compressed}]"


def _port_suffix(port_text: str, scheme: str) -> str:
    # An empty port ("example.com:") means the default one (RFC 3986 section 6.2.3).
    if not port_text:
        return ""
    if not _PORT_RE.fullmatch(port_text) or not 1 <= int(port_text) <= 65535:
        raise InvalidUrl(f"port {_shorten(port_text)!r} is not a number in 1..65535")
    port = int(port_text)
    return "" if port == DEFAULT_PORTS[scheme] else f":{port}"


def _ascii_host(name: str, error: type[DomainError]) -> str:
    """Lower-cased, punycode, trailing-dot-free host name; `error` on invalid labels."""
    host = name.lower()
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise error(f"{_shorten(name)!r} is not a valid international host name") from None
    # After the idna codec, which turns an ideographic full stop into a trailing ".".
    host = host.removesuffix(".")
    if not host:
        raise error("host name is empty")
    if len(host) > MAX_HOST_LENGTH:
        raise error(f"host name is longer than {MAX_HOST_LENGTH} characters")
    for label in host.split("."):
        if not label or len(label) > MAX_LABEL_LENGTH or not _LABEL_RE.fullmatch(label):
            raise error(f"{_shorten(name)!r} is not a valid host name")
    return host


def _normalise_escapes(text: str, safe: frozenset[str]) -> str:
    """Decode escapes of unreserved characters, upper-case the others, encode the rest.

    Reserved characters keep their form: "%2F" and "/" differ in meaning, so neither is turned
    into the other.
    """
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        escape = text[i + 1 : i + 3]
        if char == "%" and len(escape) == 2 and set(escape) <= _HEX:
            decoded = chr(int(escape, 16))
            out.append(decoded if decoded in _UNRESERVED else "%" + escape.upper())
            i += 3
            continue
        if char in safe:
            out.append(char)
        else:
            # Includes a stray "%" that does not start an escape: it becomes "%25".
            out.extend(f"%{byte:02X}" for byte in char.encode("utf-8"))
        i += 1
    return "".join(out)


def _remove_dot_segments(path: str) -> str:
    """Resolve "." and ".." segments of an absolute path (RFC 3986 section 5.2.4)."""
    segments = path.split("/")[1:]
    kept: list[str] = []
    for segment in segments:
        if segment == "..":
            if kept:
                kept.pop()
        elif segment != ".":
            kept.append(segment)
    if segments and segments[-1] in (".", ".."):
        kept.append("")
    return "/" + "/".join(kept)


def _canonical_query(query: str) -> str:
    """Drop tracking parameters and sort the rest by (key, value); "" when none remain."""
    params: list[tuple[str, str, str]] = []
    for piece in query.split("&"):
        if not piece:
            continue
        key, equals, value = piece.partition("=")
        key = _normalise_escapes(key, _QUERY_SAFE)
        if _is_tracking(key):
            continue
        value = _normalise_escapes(value, _QUERY_SAFE)
        params.append((key, value, f"{key}{equals}{value}"))
    params.sort()
    return "&".join(rendered for _, _, rendered in params)


def _is_tracking(key: str) -> bool:
    name = unquote(key.replace("+", " ")).lower()
    return name in TRACKING_PARAMS or name.startswith(TRACKING_PREFIXES)


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
