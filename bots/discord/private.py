"""Direct messages to one user: never a public message per reaction.

A user whose DMs are closed answers 403 (code 50007); the bot then leaves them alone for a
day, since every refused request counts toward Discord's limit of invalid requests."""

import logging

import discord

from bots.discord.texts import clipped
from bots.memory import Memory

log = logging.getLogger("flattr.bots.discord")
DAY = 24 * 3600
CLOSED_SECONDS = DAY


def link_button(label: str, url: str) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(discord.ui.Button(label=label, url=url))
    return view


async def tell(client: discord.Client, memory: Memory, user_id: int, text: str, *,
               once: str | None = None, once_seconds: int = DAY,
               view: discord.ui.View | None = None) -> bool:
    """DM `text` (with `once`, only the first time in `once_seconds`); True when sent."""
    if await memory.get(f"closed:{user_id}"):
        return False
    if once is not None and not await memory.first_time(once, once_seconds):
        return False
    try:
        channel = await client.create_dm(discord.Object(user_id))
        await channel.send(clipped(text), **({"view": view} if view is not None else {}))
    except discord.Forbidden as error:
        log.info("DMs of %s are closed: %s", user_id, error)
        await memory.put(f"closed:{user_id}", "1", CLOSED_SECONDS)
        return False
    except discord.HTTPException as error:
        log.warning("DM to %s failed: %s", user_id, error)
        return False
    return True
