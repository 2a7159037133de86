"""The Discord bot's settings: the shared ones and its own (FLATTR_DISCORD_*)."""

from pydantic import Field, SecretStr

from bots.settings import BotSettings

DISCORD_API = "https://discord.com/api/v10"
DISCORD_GATEWAY = "wss://gateway.discord.gg/"


class DiscordSettings(BotSettings):
    discord_token: SecretStr | None = None  # the bot's token from the Developer Portal
    # Where every REST call goes (discord.py's Route.BASE) and the websocket gateway: Discord's,
    # or a stand-in in tests.
    discord_api_url: str = Field(default=DISCORD_API, pattern=r"^https?://[^\s]+$")
    discord_gateway_url: str = Field(default=DISCORD_GATEWAY, pattern=r"^wss?://[^\s]+$")
    # The flattr emoji of a server whose managers chose none.
    discord_emoji: str = Field(default="💸", min_length=1, max_length=64)
    # Seconds between two DMs of the delivery loop (Discord frowns on DM bursts).
    discord_dm_interval_seconds: float = Field(default=1.0, ge=0.0, le=60.0)
    # A member's reactions: at most `burst` at once, then one every `refill` seconds.
    discord_reaction_burst: int = Field(default=20, ge=1, le=1000)
    discord_reaction_refill_seconds: float = Field(default=3.0, ge=0.0, le=3600.0)
