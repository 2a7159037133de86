from urllib.parse import SplitResult, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core import urls
from core.errors import InvalidHost, InvalidUrl
from core.urls import (
    MAX_URL_LENGTH,
    _normalised_parts,
    canonical_parts,
    canonical_url,
    normalise_host,
)


def whatwg_split(url: str) -> SplitResult:
    """An independent reading of an http(s) URL, as browsers read it: the standard library's,
    once the backslashes before the query are slashes (WHATWG URL, special schemes)."""
    end = len(url)
    for mark in "?#":
        if mark in url:
            end = min(end, url.index(mark))
    return urlsplit(url[:end].replace("\\", "/") + url[end:])


def url_host(url: str) -> str:
    return whatwg_split(url).hostname or ""


def url_path(url: str) -> str:
    return whatwg_split(url).path


CANONICAL = [
    # scheme and host case, empty path
    ("http://example.com", "http://example.com/"),
    ("HTTPS://EXAMPLE.COM", "https://example.com/"),
    ("HtTpS://Example.Com/Path", "https://example.com/Path"),
    ("  https://example.com/a  ", "https://example.com/a"),
    ("\thttps://example.com/\n", "https://example.com/"),
    # trailing dot of the host
    ("https://example.com./a", "https://example.com/a"),
    # IDN hosts
    ("https://bücher.de/", "https://xn--bcher-kva.de/"),
    ("https://BÜCHER.de/", "https://xn--bcher-kva.de/"),
    ("https://xn--bcher-kva.de/", "https://xn--bcher-kva.de/"),
    ("https://münchen.example.", "https://xn--mnchen-3ya.example/"),
    ("https://例え.テスト/", "https://xn--r8jz45g.xn--zckzah/"),
    # userinfo dropped
    ("https://user:secret@example.com/", "https://example.com/"),
    ("https://user@example.com/", "https://example.com/"),
    ("https://a@b@example.com/", "https://example.com/"),
    # ports
    ("http://example.com:80/", "http://example.com/"),
    ("https://example.com:443/", "https://example.com/"),
    ("http://example.com:443/", "http://example.com:443/"),
    ("https://example.com:80/", "https://example.com:80/"),
    ("https://example.com:8443/x", "https://example.com:8443/x"),
    ("https://example.com:08443/x", "https://example.com:8443/x"),
    ("https://example.com:/x", "https://example.com/x"),
    # IP literals
    ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/"),
    ("http://[2001:DB8:0:0::1]/", "http://[2001:db8::1]/"),
    ("https://[::1]:443/", "https://[::1]/"),
    ("https://[::1]:8443", "https://[::1]:8443/"),
    # dot segments
    ("https://example.com/a/./b/../c", "https://example.com/a/c"),
    ("https://example.com/a/b/..", "https://example.com/a/"),
    ("https://example.com/a/b/.", "https://example.com/a/b/"),
    ("https://example.com/../../a", "https://example.com/a"),
    ("https://example.com/.", "https://example.com/"),
    ("https://example.com/a/%2E%2E/b", "https://example.com/b"),
    ("https://example.com/a/.hidden/..x", "https://example.com/a/.hidden/..x"),
    ("https://example.com/a//b/", "https://example.com/a//b/"),
    # percent-encoding
    ("https://example.com/%7euser", "https://example.com/~user"),
    ("https://example.com/%41%62%2D%5F%2E", "https://example.com/Ab-_."),
    ("https://example.com/a%2fb", "https://example.com/a%2Fb"),
    ("https://example.com/a%2Fb", "https://example.com/a%2Fb"),
    ("https://example.com/%e4", "https://example.com/%E4"),
    ("https://example.com/ä", "https://example.com/%C3%A4"),
    ("https://example.com/%C3%A4", "https://example.com/%C3%A4"),
    ("https://example.com/a b", "https://example.com/a%20b"),
    ("https://example.com/a%20b", "https://example.com/a%20b"),
    ("https://example.com/100%", "https://example.com/100%25"),
    ("https://example.com/%zz", "https://example.com/%25zz"),
    ("https://example.com/%4", "https://example.com/%254"),
    ('https://example.com/a"<>^`{|}', "https://example.com/a%22%3C%3E%5E%60%7B%7C%7D"),
    # backslashes before the query are slashes, as browsers read http(s) URLs (WHATWG)
    ("https://example.com\\@evil.com/", "https://example.com/@evil.com/"),
    ("https://user\\@evil.com@example.com/", "https://user/@evil.com@example.com/"),
    ("https:\\\\example.com\\a\\b", "https://example.com/a/b"),
    ("https://example.com/a\\..\\b", "https://example.com/b"),
    ("https://example.com/a\\", "https://example.com/a/"),
    ("https://example.com/?q=a\\b", "https://example.com/?q=a%5Cb"),
    ("https://example.com/a#b\\c", "https://example.com/a"),
    ("https://example.com/a:b@c!$&'()*+,;=", "https://example.com/a:b@c!$&'()*+,;="),
    ("https://example.com/日本", "https://example.com/%E6%97%A5%E6%9C%AC"),
    # fragment dropped
    ("https://example.com/a#section", "https://example.com/a"),
    ("https://example.com/a?b=1#x?y=2", "https://example.com/a?b=1"),
    ("https://example.com#", "https://example.com/"),
    # query: tracking removed, rest sorted by (key, value)
    ("https://example.com/?", "https://example.com/"),
    ("https://example.com/?&&", "https://example.com/"),
    ("https://example.com/?b=2&a=1", "https://example.com/?a=1&b=2"),
    ("https://example.com/?a=2&a=1", "https://example.com/?a=1&a=2"),
    ("https://example.com/?b=1&a=", "https://example.com/?a=&b=1"),
    ("https://example.com/?flag&a=1", "https://example.com/?a=1&flag"),
    ("https://example.com/?utm_source=x&utm_medium=y&utm_whatever=z", "https://example.com/"),
    ("https://example.com/?UTM_Source=x&id=3", "https://example.com/?id=3"),
    ("https://example.com/?fbclid=1&gclid=2&dclid=3&id=4", "https://example.com/?id=4"),
    ("https://example.com/?gbraid=1&wbraid=2&msclkid=3&yclid=4", "https://example.com/"),
    ("https://example.com/?mc_cid=1&mc_eid=2&igshid=3&_ga=4&_gl=5", "https://example.com/"),
    ("https://example.com/?utm=1&utmx=2&ga=3", "https://example.com/?ga=3&utm=1&utmx=2"),
    ("https://example.com/p?q=a+b&r=a%20b", "https://example.com/p?q=a+b&r=a%20b"),
    ("https://example.com/?q=%7e%2b%26", "https://example.com/?q=~%2B%26"),
    ("https://example.com/?q=ä ö", "https://example.com/?q=%C3%A4%20%C3%B6"),
    ("https://example.com/?next=/a/b?c", "https://example.com/?next=/a/b?c"),
    ("https://example.com/?a=b=c", "https://example.com/?a=b=c"),
    ("https://example.com?x=1", "https://example.com/?x=1"),
    # everything at once
    (
        " HTTP://User:pw@Bücher.DE.:80/a/./b/../c%7e%2f?utm_source=x&b=2&a=&fbclid=3#frag ",
        "http://xn--bcher-kva.de/a/c~%2F?a=&b=2",
    ),
]

REFUSED = [
    ("", "empty"),
    ("   ", "empty"),
    ("example.com", "absolute"),
    ("example.com/page", "absolute"),
    ("/relative/path", "absolute"),
    ("//example.com/path", "absolute"),
    ("chrome://settings", "only http and https"),
    ("javascript:alert(1)", "only http and https"),
    ("JavaScript:alert(1)", "only http and https"),
    ("ftp://example.com/file", "only http and https"),
    ("mailto:someone@example.com", "only http and https"),
    ("data:text/html,hello", "only http and https"),
    ("file:///etc/passwd", "only http and https"),
    ("localhost:8080", "only http and https"),
    ("http:example.com", "no host"),
    ("http:/example.com", "no host"),
    ("https://", "no host"),
    ("https:///path", "no host"),
    ("https://user@/path", "no host"),
    ("https://:443/", "no host"),
    ("https://example.com:99999/", "port"),
    ("https://example.com:0/", "port"),
    ("https://example.com:-1/", "port"),
    ("https://example.com:+80/", "port"),
    ("https://example.com:http/", "port"),
    ("https://example.com:80:81/", "port"),
    ("https://exa mple.com/", "not a valid host"),
    ("https://exa_mple!.com/", "not a valid host"),
    ("https://example..com/", "not a valid host"),
    ("https://.example.com/", "not a valid host"),
    ("https://example.com../", "not a valid host"),
    ("https://./", "empty"),
    ("https://ex%41mple.com/", "not a valid host"),
    ("https://" + "a" * 64 + ".com/", "not a valid host"),
    ("https://" + ("a" * 60 + ".") * 5 + "com/", "longer than 253"),
    ("https://[::1/", "not a valid URL"),
    ("https://[not-ipv6]/", "not a valid"),
    ("https://[fe80::1%25eth0]/", "zone"),
    ("https://[::1]x/", "after the IPv6"),
    ("https://exa\x00mple.com/", "control"),
    ("https://example.com/a\x07b", "control"),
    ("https://example.com/a\x7fb", "control"),
    ("https://example.com/a\x85b", "control"),
    ("https://example.com/a\nb", "control"),
    ("https://example.com/\ud800", "Unicode"),
    ("https://example.com/" + "a" * MAX_URL_LENGTH, f"longer than {MAX_URL_LENGTH}"),
]


@pytest.mark.parametrize(("raw", "canonical"), CANONICAL)
def test_canonical_url(raw: str, canonical: str) -> None:
    assert canonical_url(raw) == canonical


@pytest.mark.parametrize(("raw", "canonical"), CANONICAL)
def test_canonical_url_is_idempotent(raw: str, canonical: str) -> None:
    assert canonical_url(canonical) == canonical


@pytest.mark.parametrize(("raw", "fragment"), REFUSED)
def test_canonical_url_refuses(raw: str, fragment: str) -> None:
    with pytest.raises(InvalidUrl, match=fragment) as caught:
        canonical_url(raw)
    assert caught.value.code == "invalid_url"


@pytest.mark.parametrize("raw", [None, 42, b"https://example.com/"])
def test_canonical_url_refuses_non_strings(raw: object) -> None:
    with pytest.raises(InvalidUrl, match="must be a string"):
        canonical_url(raw)  # type: ignore[arg-type]


def test_length_limit_applies_to_the_result_too() -> None:
    base = "https://example.com/"
    fits = base + "a" * (MAX_URL_LENGTH - len(base))
    assert canonical_url(fits) == fits
    # Short enough as typed, too long once "ä" becomes "%C3%A4".
    grows = base + "ä" * ((MAX_URL_LENGTH - len(base)) // 2)
    with pytest.raises(InvalidUrl, match="once normalised"):
        canonical_url(grows)


@pytest.mark.parametrize(
    ("canonical", "host", "path"),
    [
        ("https://example.com/", "example.com", "/"),
        ("https://example.com:8443/a/b?c=1", "example.com", "/a/b"),
        ("https://xn--bcher-kva.de/x%20y", "xn--bcher-kva.de", "/x%20y"),
        ("http://[2001:db8::1]:8080/p", "2001:db8::1", "/p"),
    ],
)
def test_url_host_and_path(canonical: str, host: str, path: str) -> None:
    assert canonical_parts(canonical) == (canonical, host, path)


@pytest.mark.parametrize(
    ("raw", "host"),
    [
        ("example.com", "example.com"),
        ("Example.COM", "example.com"),
        ("example.com.", "example.com"),
        ("bücher.de", "xn--bcher-kva.de"),
        ("BÜCHER.DE.", "xn--bcher-kva.de"),
        ("xn--bcher-kva.de", "xn--bcher-kva.de"),
        ("blog.sub-domain.example.co.uk", "blog.sub-domain.example.co.uk"),
        ("localhost", "localhost"),
    ],
)
def test_normalise_host(raw: str, host: str) -> None:
    assert normalise_host(raw) == host


@pytest.mark.parametrize(
    "raw",
    [
        "",
        ".",
        "https://example.com",
        "example.com/path",
        "example.com:8080",
        "example.com?x",
        "example.com#x",
        "user@example.com",
        "exa mple.com",
        " example.com",
        "example.com ",
        "example.com\n",
        "example..com",
        ".example.com",
        "example.com..",
        "exa!mple.com",
        "ex%41mple.com",
        "[::1]",
        "a" * 64 + ".com",
        None,
    ],
)
def test_normalise_host_refuses(raw: str) -> None:
    with pytest.raises(InvalidHost) as caught:
        normalise_host(raw)
    assert caught.value.code == "invalid_host"


def test_hosts_of_urls_match_normalised_hosts() -> None:
    assert canonical_parts("https://Bücher.de./x")[1] == normalise_host("BÜCHER.de")


# Text from which URL parts are drawn: unreserved, reserved, escapes and awkward characters.
_PIECES = st.sampled_from(
    [
        "a",
        "Z",
        "0",
        "-",
        "~",
        ".",
        "..",
        "/",
        "%",
        "%2F",
        "%7e",
        "%41",
        "%zz",
        " ",
        "ä",
        "+",
        "=",
        "&",
        "?",
        ":",
        "@",
        "!",
        "'",
        "(",
        "|",
        "\\",
        '"',
        "日",
    ]
)
_FRAGMENTS = st.lists(_PIECES, max_size=12).map("".join)
_HOSTS = st.sampled_from(["example.com", "EXAMPLE.com.", "bücher.de", "127.0.0.1", "[::1]"])
_PARAMS = st.lists(
    st.tuples(
        st.sampled_from(["a", "B", "utm_source", "fbclid", "q", "%61", "x y"]),
        st.sampled_from(["", "=", "=1", "=a b", "=%7e", "=1=2", "=ä"]),
    ),
    max_size=5,
).map(lambda pairs: "&".join(key + value for key, value in pairs))


@given(
    st.sampled_from(["http", "HTTPS", "https"]),
    _HOSTS,
    st.sampled_from(["", ":80", ":443", ":8080"]),
    _FRAGMENTS,
    _PARAMS,
    _FRAGMENTS,
)
def test_canonical_url_is_a_fixed_point(
    scheme: str, host: str, port: str, path: str, query: str, fragment: str
) -> None:
    raw = f"{scheme}://{host}{port}/{path}?{query}#{fragment}"
    canonical = canonical_url(raw)
    assert canonical_url(canonical) == canonical
    assert canonical.isascii()
    assert "#" not in canonical
    keys = [piece.partition("=")[0] for piece in canonical.partition("?")[2].split("&")]
    assert not any(key.lower().startswith("utm_") or key == "fbclid" for key in keys)
    assert "/./" not in url_path(canonical) and "/../" not in url_path(canonical)


@given(
    st.sampled_from(["http", "HTTPS"]),
    st.sampled_from(["example.com", "EXAMPLE.com.", "bücher.de", "127.0.0.1"]),
    st.sampled_from(["", ":8080"]),
    st.sampled_from(["/", "\\"]),
    _FRAGMENTS,
)
def test_the_host_is_the_one_browsers_read(
    scheme: str, host: str, port: str, separator: str, rest: str
) -> None:
    # A backslash ends the host as a slash does: "https://a.example\\@b.example/" is a.example.
    raw = f"{scheme}://{host}{port}{separator}{rest}"
    url, found_host, path = canonical_parts(raw)
    assert found_host == normalise_host(url_host(raw)) == url_host(url)
    assert path == url_path(url)


# The shortcut for URLs that are canonical already must agree with the whole way.
_PLAIN_HOSTS = st.lists(
    st.sampled_from(["a", "example", "x-1", "_dmarc", "B", "", "ä", "a" * 64, "0"]),
    min_size=1, max_size=4,
).map(".".join)
_PLAIN_PATHS = st.lists(
    st.sampled_from(["/", "a", ".", "..", "/.", "/..", "~", "-", ":", "@", "%41", "?q=1", "#f",
                     " ", "!$&'()*+,;=", "日"]),
    max_size=8,
).map("".join)


def _outcome(parse, raw: str) -> object:
    try:
        return parse(raw)
    except InvalidUrl as error:
        return type(error)


@given(st.sampled_from(["http", "https", "HTTP"]), _PLAIN_HOSTS,
       st.sampled_from(["", ":80", ":8080"]), _PLAIN_PATHS)
def test_the_shortcut_for_canonical_urls_agrees_with_the_whole_way(
    scheme: str, host: str, port: str, path: str
) -> None:
    raw = f"{scheme}://{host}{port}{path}"
    found = _outcome(canonical_parts, raw)
    assert found == _outcome(_normalised_parts, raw)
    if not isinstance(found, type):
        url, url_host_, path_ = found
        assert (url_host_, path_) == (url_host(url), url_path(url))


def test_the_shortcut_takes_plain_urls_and_leaves_the_rest(monkeypatch) -> None:
    def whole_way(raw: str):
        raise AssertionError(f"{raw} went the whole way")

    monkeypatch.setattr(urls, "_normalised_parts", whole_way)
    assert canonical_parts("https://site7.example/post/12") == (
        "https://site7.example/post/12", "site7.example", "/post/12")
    with pytest.raises(AssertionError):
        canonical_parts("https://site7.example/post/12?utm_source=x")
