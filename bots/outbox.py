"""What a bot's delivery loop needs besides its sending: lease a platform's messages from
the gateway's outbox, acknowledge each as soon as the platform took it, or tell the gateway
how it failed (a retry after, or for good), and go on leasing while the gateway is away for
a moment.

A bot's loop subclasses `OutboxLoop` and writes `round()`: what it sends and how it paces."""

import asyncio
import logging
from dataclasses import dataclass

from bots.client import GatewayClient, GatewayError, Leased

log = logging.getLogger("flattr.bots.outbox")
LEASE_FAILED_PAUSE_SECONDS = 5.0


@dataclass
class Delivered:
    sent: int = 0
    retried: int = 0
    unreachable: int = 0

    def add(self, other: "Delivered") -> None:
        self.sent += other.sent
        self.retried += other.retried
        self.unreachable += other.unreachable


class OutboxLoop:
    platform: str

    def __init__(self, gateway: GatewayClient, *, batch: int, lease_seconds: int,
                 wait_seconds: int) -> None:
        self.gateway = gateway
        self.batch = batch
        self.lease_seconds = lease_seconds
        self.wait_seconds = wait_seconds
        self.total = Delivered()

    async def lease(self, wait_seconds: int | None = None) -> list[Leased]:
        return await self.gateway.lease(
            self.platform, max_messages=self.batch, lease_seconds=self.lease_seconds,
            wait_seconds=self.wait_seconds if wait_seconds is None else wait_seconds)

    async def round(self, wait_seconds: int | None = None) -> Delivered:
        raise NotImplementedError

    async def acknowledged(self, message: Leased) -> Delivered:
        try:
            await self.gateway.ack(message.id)
        except GatewayError as error:  # sent all the same; the lease ends and it comes back
            log.warning("%s delivery %s sent but not acknowledged: %s", self.platform,
                        message.id, error)
        return Delivered(sent=1)

    async def failed(self, message: Leased, *, retry_after: float | None = None,
                     permanent: bool = False, reason: str | None = None) -> Delivered:
        try:
            await self.gateway.fail(message.id, retry_after=retry_after, permanent=permanent,
                                    reason=reason)
        except GatewayError as error:  # the lease ends and the message comes back
            log.warning("%s delivery %s failed and not told: %s", self.platform, message.id,
                        error)
        return Delivered(unreachable=1) if permanent else Delivered(retried=1)

    async def run_forever(self) -> None:
        while True:
            try:
                self.total.add(await self.round())
            except GatewayError as error:
                log.warning("%s outbox lease failed: %s", self.platform, error)
                await asyncio.sleep(LEASE_FAILED_PAUSE_SECONDS)
