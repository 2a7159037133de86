"""The delivery loop: lease Telegram messages from the gateway's outbox, send each as a
private message with a button to the statement page, acknowledge it at once.

Pacing is PTB's AIORateLimiter's (about 30 messages a second, one a second a chat), which
also waits out a 429's retry_after once; a second 429 hands the message back with that
retry_after. A user who blocked the bot or never started it (403) is a permanent failure:
the gateway stops sending there, and the message stays in the member's web inbox. Each
message is acknowledged as soon as Telegram took it, so a bot restarted mid-run sends again
only what it sent and had not yet acknowledged."""

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.constants import MessageLimit
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError

from bots.client import GatewayClient, GatewayError, Leased
from bots.telegram.private import NO_PREVIEW

log = logging.getLogger("flattr.bots.telegram.delivery")
PLATFORM = "telegram"
IN_FLIGHT = 16  # sends at once; the rate limiter paces them


@dataclass
class Delivered:
    sent: int = 0
    retried: int = 0
    unreachable: int = 0

    def add(self, other: "Delivered") -> None:
        self.sent += other.sent
        self.retried += other.retried
        self.unreachable += other.unreachable


def seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class Deliverer:
    def __init__(self, bot: Bot, gateway: GatewayClient, public_url: str, *,
                 batch: int = 50, lease_seconds: int = 120, wait_seconds: int = 20,
                 retry_seconds: float = 5.0) -> None:
        self.bot = bot
        self.gateway = gateway
        self.public_url = public_url.rstrip("/")
        self.batch = batch
        self.lease_seconds = lease_seconds
        self.wait_seconds = wait_seconds
        self.retry_seconds = retry_seconds  # after a round that failed
        self.total = Delivered()
        self._slots = asyncio.Semaphore(IN_FLIGHT)

    def markup(self, message: Leased) -> InlineKeyboardMarkup | None:
        if not message.period:
            return None
        link = f"{self.public_url}/statements/{message.period}"
        return InlineKeyboardMarkup([[InlineKeyboardButton("Your statement", url=link)]])

    async def round(self, wait_seconds: int | None = None) -> Delivered:
        """One lease (waiting up to `wait_seconds` for messages) and its sends."""
        leased = await self.gateway.lease(
            PLATFORM, max_messages=self.batch, lease_seconds=self.lease_seconds,
            wait_seconds=self.wait_seconds if wait_seconds is None else wait_seconds)
        done = Delivered()
        for outcome in await asyncio.gather(*(self._deliver(m) for m in leased)):
            done.add(outcome)
        self.total.add(done)
        return done

    async def _deliver(self, message: Leased) -> Delivered:
        async with self._slots:
            try:
                await self.bot.send_message(
                    int(message.chat_id), message.text[:MessageLimit.MAX_TEXT_LENGTH],
                    reply_markup=self.markup(message), link_preview_options=NO_PREVIEW)
            except RetryAfter as error:
                await self._fail(message, retry_after=seconds(error.retry_after))
                return Delivered(retried=1)
            except Forbidden as error:
                await self._fail(message, permanent=True, reason=str(error))
                return Delivered(unreachable=1)
            except BadRequest as error:
                gone = "chat not found" in str(error).lower()
                await self._fail(message, permanent=gone, reason=str(error))
                return Delivered(unreachable=1) if gone else Delivered(retried=1)
            except TelegramError as error:  # network trouble, Telegram's 5xx
                await self._fail(message, reason=str(error))
                return Delivered(retried=1)
        try:
            await self.gateway.ack(message.id)
        except GatewayError as error:  # sent all the same; the lease ends and it comes back
            log.warning("delivery %s sent but not acknowledged: %s", message.id, error)
        return Delivered(sent=1)

    async def _fail(self, message: Leased, **how) -> None:
        try:
            await self.gateway.fail(message.id, **how)
        except GatewayError as error:  # the lease ends and the message comes back
            log.warning("delivery %s failed and not told: %s", message.id, error)

    async def run_forever(self) -> None:
        while True:
            try:
                await self.round()
            except GatewayError as error:
                log.warning("outbox lease failed: %s", error)
                await asyncio.sleep(self.retry_seconds)
            except Exception:  # never dies quietly: logged, and tried again after a while
                log.exception("delivery round failed")
                await asyncio.sleep(self.retry_seconds)
