"""Keys of flattrable things: web pages (canonical URLs) and chat messages."""

import re
from dataclasses import dataclass

from core.errors import InvalidThing
from core.urls import MAX_URL_LENGTH, canonical_parts

MAX_THING_KEY_LENGTH = MAX_URL_LENGTH

KIND_URL = "url"
KIND_DISCORD = "discord"
KIND_TELEGRAM = "telegram"

# Snowflakes and message ids: positive, no leading zeros, at most 20 digits.
_ID = r"[1-9][0-9]{0,19}"
_DISCORD_RE = re.compile(rf"discord:({_ID})/({_ID})/({_ID})", re.IGNORECASE | re.ASCII)
# Telegram group and channel chat ids are negative (e.g. -1001234567890).
_TELEGRAM_RE = re.compile(rf"telegram:(-?{_ID})/({_ID})", re.IGNORECASE | re.ASCII)
_WEB_RE = re.compile(r"https?://", re.IGNORECASE | re.ASCII)
_SCHEME_RE = re.compile(r"[a-z][a-z0-9+.-]*:", re.IGNORECASE | re.ASCII)


@dataclass(frozen=True)
class ThingKey:
    key: str
    kind: str  # "url" | "discord" | "telegram"
    url: str | None
    host: str | None
    path: str | None
    author: str | None = None


def parse_thing_key(text: str) -> ThingKey:
    """Parse "https://…", "discord:<guild>/<channel>/<message>" or "telegram:<chat>/<message>".

    Raises InvalidUrl for web addresses that cannot be canonicalised (including other schemes
    such as chrome://) and InvalidThing for everything else.
    """
    if not isinstance(text, str):
        raise InvalidThing(f"thing key must be a string, not {type(text).__name__}")
    stripped = text.strip()
    if not stripped:
        raise InvalidThing("thing key is empty")
    if len(stripped) > MAX_THING_KEY_LENGTH:
        raise InvalidThing(f"thing key is longer than {MAX_THING_KEY_LENGTH} characters")
    prefix = stripped.split(":", 1)[0].lower()
    if prefix == KIND_DISCORD:
        return _discord_key(stripped)
    if prefix == KIND_TELEGRAM:
        return _telegram_key(stripped)
    if _WEB_RE.match(stripped) or _SCHEME_RE.match(stripped):
        return _url_key(stripped)
    raise InvalidThing(
        f"{stripped[:80]!r} is not a thing key; expected an https:// URL, "
        "discord:<guild>/<channel>/<message> or telegram:<chat>/<message>"
    )


def _discord_key(text: str) -> ThingKey:
    match = _DISCORD_RE.fullmatch(text)
    if match is None:
        raise InvalidThing(
            f"{text[:80]!r} is not a Discord message key; expected "
            "discord:<guild>/<channel>/<message> with positive numeric ids"
        )
    guild, channel, message = match.groups()
    return _chat_key(KIND_DISCORD, f"discord:{guild}/{channel}/{message}")


def _telegram_key(text: str) -> ThingKey:
    match = _TELEGRAM_RE.fullmatch(text)
    if match is None:
        raise InvalidThing(
            f"{text[:80]!r} is not a Telegram message key; expected "
            "telegram:<chat>/<message> with numeric ids"
        )
    chat, message = match.groups()
    return _chat_key(KIND_TELEGRAM, f"telegram:{chat}/{message}")


def _chat_key(kind: str, key: str) -> ThingKey:
    return ThingKey(key=key, kind=kind, url=None, host=None, path=None)


def _url_key(text: str) -> ThingKey:
    # Other schemes (chrome://, mailto:, javascript:) are refused here with InvalidUrl.
    url, host, path = canonical_parts(text)
    return ThingKey(key=url, kind=KIND_URL, url=url, host=host, path=path)
