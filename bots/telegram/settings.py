"""The Telegram bot's settings: the shared ones and its own (FLATTR_TELEGRAM_*)."""

from pydantic import Field, SecretStr

from bots.settings import BotSettings

TELEGRAM_API = "https://api.telegram.org"


class TelegramSettings(BotSettings):
    telegram_token: SecretStr | None = None
    # The root of a Bot API server: Telegram's, a self-hosted one, or a test stand-in; PTB's
    # form of it, ending in /bot, is taken too.
    telegram_base_url: str = Field(default=TELEGRAM_API, pattern=r"^https?://[^\s]+$")
    # Unset: long polling. Set: Telegram posts updates to this public https address, which
    # a reverse proxy hands to the bot's own server on webhook_listen:webhook_port.
    telegram_webhook_url: str | None = Field(default=None, pattern=r"^https://[^\s]+$")
    telegram_webhook_listen: str = "127.0.0.1"
    telegram_webhook_port: int = Field(default=8443, ge=1, le=65535)
    telegram_webhook_secret: SecretStr | None = None  # checked on every posted update
    # The default flattr emoji of a chat whose admins chose none (one of Telegram's).
    telegram_emoji: str = "👍"
    # Updates handled at once (a user's reactions to one post still one after the other).
    telegram_concurrent_updates: int = Field(default=64, ge=1, le=1024)
    # Seconds between two edits of a channel post's button (its live count).
    telegram_count_edit_seconds: float = Field(default=5.0, ge=0.0, le=3600.0)

    @property
    def api_root(self) -> str:
        """The server's root: http://host:port, whether given so or as http://host:port/bot."""
        return self.telegram_base_url.rstrip("/").removesuffix("/bot")
