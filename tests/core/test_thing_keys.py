import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import InvalidThing, InvalidUrl
from core.thing_keys import MAX_THING_KEY_LENGTH, ThingKey, parse_thing_key

SNOWFLAKE = "123456789012345678"
MAX_ID = "9" * 20


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (f"discord:{SNOWFLAKE}/2/3", f"discord:{SNOWFLAKE}/2/3"),
        (f"discord:1/2/{MAX_ID}", f"discord:1/2/{MAX_ID}"),
        ("  discord:1/2/3 ", "discord:1/2/3"),
        ("Discord:1/2/3", "discord:1/2/3"),
    ],
)
def test_discord_keys(text: str, key: str) -> None:
    assert parse_thing_key(text) == ThingKey(
        key=key, kind="discord", url=None, host=None, path=None
    )


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("telegram:-1001234567890/42", "telegram:-1001234567890/42"),
        ("telegram:123456/1", "telegram:123456/1"),
        (f"telegram:-{MAX_ID}/{MAX_ID}", f"telegram:-{MAX_ID}/{MAX_ID}"),
        ("TELEGRAM:5/6", "telegram:5/6"),
    ],
)
def test_telegram_keys(text: str, key: str) -> None:
    assert parse_thing_key(text) == ThingKey(
        key=key, kind="telegram", url=None, host=None, path=None
    )


@pytest.mark.parametrize(
    ("text", "url", "host", "path"),
    [
        ("https://example.com", "https://example.com/", "example.com", "/"),
        (
            "HTTPS://Example.com:8443/a/../b?utm_source=x&q=1#top",
            "https://example.com:8443/b?q=1",
            "example.com",
            "/b",
        ),
        ("http://bücher.de/ä", "http://xn--bcher-kva.de/%C3%A4", "xn--bcher-kva.de", "/%C3%A4"),
        (" Http://example.com/x ", "http://example.com/x", "example.com", "/x"),
    ],
)
def test_url_keys(text: str, url: str, host: str, path: str) -> None:
    thing = parse_thing_key(text)
    assert thing == ThingKey(key=url, kind="url", url=url, host=host, path=path)
    assert thing.author is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "example.com",
        "www.example.com/page",
        "hello world",
        "discord:",
        "discord:1/2",
        "discord:1/2/3/4",
        "discord:0/2/3",
        "discord:01/2/3",
        "discord:-1/2/3",
        "discord:a/b/c",
        "discord:1/2/3 x",
        f"discord:1/2/{MAX_ID}9",
        "discord:1//3",
        "discord:١/٢/٣",  # non-ASCII digits
        "telegram:",
        "telegram:1",
        "telegram:1/0",
        "telegram:1/-5",
        "telegram:0/5",
        "telegram:--1/5",
        "telegram:+1/5",
        "telegram:1/2/3",
        f"telegram:{MAX_ID}9/1",
        "x" * (MAX_THING_KEY_LENGTH + 1),
        None,
        42,
    ],
)
def test_refused_as_invalid_thing(text: str) -> None:
    with pytest.raises(InvalidThing) as caught:
        parse_thing_key(text)
    assert caught.value.code == "invalid_thing"


@pytest.mark.parametrize(
    "text",
    [
        "chrome://settings",
        "javascript:alert(1)",
        "ftp://example.com/",
        "mailto:someone@example.com",
        "data:text/html,hi",
        "https://",
        "https://exa mple.com/",
        "http://example.com:99999/",
        "https://example.com/" + "a" * (MAX_THING_KEY_LENGTH - 60) + "ä" * 20,
    ],
)
def test_refused_as_invalid_url(text: str) -> None:
    with pytest.raises(InvalidUrl) as caught:
        parse_thing_key(text)
    assert caught.value.code == "invalid_url"


ids = st.integers(min_value=1, max_value=10**20 - 1)


@given(ids, ids, ids)
def test_discord_keys_round_trip(guild: int, channel: int, message: int) -> None:
    key = f"discord:{guild}/{channel}/{message}"
    thing = parse_thing_key(key)
    assert thing.key == key
    assert parse_thing_key(thing.key) == thing


@given(ids, st.booleans(), ids)
def test_telegram_keys_round_trip(chat: int, negative: bool, message: int) -> None:
    key = f"telegram:{-chat if negative else chat}/{message}"
    thing = parse_thing_key(key)
    assert thing.key == key
    assert parse_thing_key(thing.key) == thing
