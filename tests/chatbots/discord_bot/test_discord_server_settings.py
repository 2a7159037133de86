"""/flattr-settings takes only the server's own emoji and channels, by what discord.py knows
of the server from GUILD_CREATE; of a server it does not know, what the manager named."""

from discord_harness import CHANNEL, GUILD, GUILD_EMOJI

from discord_standin import MANAGE_GUILD, Events

FAN = 100000000000000222
OTHER_EMOJI, OTHER_GUILD, STRANGE_CHANNEL = (700000000000000078, 800000000000000002,
                                             800000000000000099)
MANAGER = {"permissions": MANAGE_GUILD}


async def test_an_emoji_or_channel_of_another_server_is_refused(discord_bot, gateway):
    assert await discord_bot.text(FAN, "flattr-settings", emoji=f"<:other:{OTHER_EMOJI}>",
                                  **MANAGER) == (
        f"<:other:{OTHER_EMOJI}> is not one of this server's emoji: pick one of them, a "
        "standard one like 💸, or 'default'.")
    assert await discord_bot.text(FAN, "flattr-settings", emoji="🔥",
                                  channels=f"<#{CHANNEL}> <#{STRANGE_CHANNEL}>", **MANAGER) == (
        f"<#{STRANGE_CHANNEL}> is not a channel of this server: name its channels as "
        "#mentions, or 'all'.")
    stored = await gateway.chat_settings(f"discord:{GUILD}")
    assert (stored.emoji, stored.channels) == (None, ())  # nothing changed
    assert await discord_bot.text(FAN, "flattr-settings", emoji=f"renamed:{GUILD_EMOJI}",
                                  channels=f"<#{CHANNEL}>", **MANAGER) == (
        f"Flattr in this server: react with <:renamed:{GUILD_EMOJI}> in <#{CHANNEL}>.")


async def test_of_a_server_discord_py_does_not_know_what_is_named_is_taken(discord_bot,
                                                                            gateway):
    elsewhere = Events(OTHER_GUILD).command(
        FAN, "flattr-settings", {"emoji": f"<:other:{OTHER_EMOJI}>",
                                 "channels": f"<#{STRANGE_CHANNEL}>"}, permissions=MANAGE_GUILD)
    answer = await discord_bot.interact(elsewhere)
    assert answer["content"] == (f"Flattr in this server: react with <:other:{OTHER_EMOJI}> "
                                 f"in <#{STRANGE_CHANNEL}>.")
    stored = await gateway.chat_settings(f"discord:{OTHER_GUILD}")
    assert stored.emoji == f"other:{OTHER_EMOJI}"
