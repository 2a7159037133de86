"""The delivery loop: lease Discord messages from the gateway's outbox, send each as a DM with
a link button to the statement page, acknowledge it at once.

One DM at a time, `interval_seconds` apart at the least (a second by default), and
discord.py's own rate limiter stays on: it waits out a 429 of up to 30 s itself; a longer
one (`discord.RateLimited`) hands the message back with that retry_after. A 403 (code 50007:
the user's DMs are closed) is a permanent failure: the gateway stops sending there and the
summary waits in /summary and the web inbox, never retried into Discord's limit of invalid
requests. A message is acknowledged as soon as Discord took it, so a bot restarted mid-run
sends again only what it sent and had not yet acknowledged.
"""

import asyncio
import time

import aiohttp
import discord

from bots.client import GatewayClient, Leased
from bots.discord.private import link_button
from bots.discord.texts import clipped
from bots.outbox import Delivered, OutboxLoop

CLOUDFLARE_WAIT_SECONDS = 600  # a 429 without Discord's headers: a ban, wait it out


class Deliverer(OutboxLoop):
    platform = "discord"

    def __init__(self, client: discord.Client, gateway: GatewayClient, public_url: str, *,
                 interval_seconds: float = 1.0, batch: int = 20, wait_seconds: int = 10) -> None:
        # The lease lasts a whole batch at the pace, with room for discord.py's own waits.
        super().__init__(gateway, batch=batch, wait_seconds=wait_seconds,
                         lease_seconds=max(60, int(batch * interval_seconds) + 60))
        self.client = client
        self.public_url = public_url.rstrip("/")
        self.interval_seconds = interval_seconds
        self._last_sent = 0.0

    async def round(self, wait_seconds: int | None = None) -> Delivered:
        """One lease (waiting up to `wait_seconds` for messages) and its sends, in turn."""
        done = Delivered()
        for message in await self.lease(wait_seconds):
            done.add(await self._deliver(message))
        return done

    async def _paced(self) -> None:
        wait = self._last_sent + self.interval_seconds - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        self._last_sent = time.monotonic()

    async def _deliver(self, message: Leased) -> Delivered:
        await self._paced()
        try:
            channel = await self.client.create_dm(discord.Object(int(message.chat_id)))
            extra = {}
            if message.period:
                extra["view"] = link_button("Your statement",
                                            f"{self.public_url}/statements/{message.period}")
            await channel.send(clipped(message.text), **extra)
        except discord.RateLimited as error:
            return await self.failed(message, retry_after=error.retry_after)
        except (discord.Forbidden, discord.NotFound) as error:  # DMs closed, no such user
            return await self.failed(message, permanent=True, reason=_reason(error))
        except discord.HTTPException as error:
            wait = CLOUDFLARE_WAIT_SECONDS if error.status == 429 else None
            return await self.failed(message, retry_after=wait, reason=_reason(error))
        except (aiohttp.ClientError, TimeoutError) as error:
            return await self.failed(message, reason=f"{type(error).__name__}: {error}")
        return await self.acknowledged(message)

    async def run_forever(self) -> None:
        await self.client.wait_until_ready()
        await super().run_forever()


def _reason(error: discord.HTTPException) -> str:
    return f"Discord {error.status} (code {error.code}): {error.text}"[:500]
