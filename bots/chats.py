"""A chat's settings (emoji, owner, channels) as a bot reads them: from the gateway through
a short cache, so that a burst of reactions asks once; an older copy, or the defaults,
while the gateway cannot be reached. For any bot: the key is the chat's
(`telegram:<chat id>`, `discord:<server id>`)."""

import time

from bots.client import ChatSettings, GatewayClient, GatewayUnavailable, RateLimited

CACHE_SECONDS = 30.0
CACHE_ENTRIES = 10_000


class ChatCache:
    def __init__(self, gateway: GatewayClient, *, seconds: float = CACHE_SECONDS,
                 max_entries: int = CACHE_ENTRIES) -> None:
        self.gateway = gateway
        self.seconds = seconds
        self.max_entries = max_entries
        self._entries: dict[str, tuple[ChatSettings, float]] = {}

    async def get(self, chat: str) -> ChatSettings:
        """The chat's settings, at most `seconds` old while the gateway answers."""
        found = self._entries.get(chat)
        if found is not None and found[1] > time.monotonic():
            return found[0]
        try:
            fresh = await self.gateway.chat_settings(chat)
        except (GatewayUnavailable, RateLimited):
            return found[0] if found is not None else ChatSettings(chat, None, None, ())
        self.remember(fresh)
        return fresh

    def remember(self, settings: ChatSettings) -> None:
        """Settings just read or changed: fresh for another `seconds`."""
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[settings.chat] = (settings, time.monotonic() + self.seconds)
