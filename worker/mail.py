"""E-mail: the worker leases the outbox's `email` deliveries and sends each through SMTP
(FLATTR_SMTP_URL), as a plain text with an HTML alternative.

smtp://user:password@host:port upgrades with STARTTLS when the server offers it; smtps://
speaks TLS from the start. A message the server takes is acknowledged at once; a 4xx
answer or a lost connection waits its back-off and is tried again; a recipient refused
with a 5xx is unreachable (core.outbox.fail, permanent).

Leases run by the clock (unless the round's instant is pinned, as `--now` does): a lease
that ran out before the sender got to its message may be another sender's now, so that
message is not sent (nor failed) here; it comes back on a later lease.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from urllib.parse import unquote, urlsplit

import aiosmtplib
from sqlalchemy.ext.asyncio import AsyncEngine

from core import outbox
from core.clock import utc_now
from core.settings import Settings
from worker.done import Done, logged

CHANNEL = "email"
AT_ONCE = 50  # deliveries leased at a time
MAX_PER_RUN = 1_000  # sent in one run of the worker; the next run sends the rest
LEASE_SECONDS = 300  # long enough for a batch through a slow server
TIMEOUT_SECONDS = 30


class SmtpUrlInvalid(ValueError):
    pass


@dataclass(frozen=True)
class SmtpServer:
    hostname: str
    port: int
    use_tls: bool
    username: str | None = None
    password: str | None = None

    def client(self) -> aiosmtplib.SMTP:
        return aiosmtplib.SMTP(
            hostname=self.hostname, port=self.port, use_tls=self.use_tls,
            start_tls=False if self.use_tls else None,  # None: STARTTLS when offered
            username=self.username, password=self.password, timeout=TIMEOUT_SECONDS,
        )


def parse_smtp_url(url: str) -> SmtpServer:
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise SmtpUrlInvalid("FLATTR_SMTP_URL is smtp://user:password@host:port or smtps://…")
    try:
        port = parts.port
    except ValueError as error:
        raise SmtpUrlInvalid(f"FLATTR_SMTP_URL has a bad port: {error}") from error
    use_tls = parts.scheme == "smtps"
    return SmtpServer(
        hostname=parts.hostname, port=port or (465 if use_tls else 25), use_tls=use_tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def email_of(leased: outbox.Leased, mail_from: str) -> EmailMessage:
    """The message as a mail client shows it. Its Message-ID is the same on every try, so a
    server that sees a retry of a message it took can tell."""
    domain = parseaddr(mail_from)[1].rpartition("@")[2] or "localhost"
    message = EmailMessage()
    message["From"] = mail_from
    message["To"] = leased.address
    message["Subject"] = leased.subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = f"<outbox-{leased.message_id}.{leased.id}@{domain}>"
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(leased.text)
    message.add_alternative(f"<!DOCTYPE html><html><body>{leased.html}</body></html>",
                            subtype="html")
    return message


@dataclass
class _Tally:
    sent: int = 0
    retried: int = 0
    unreachable: int = 0
    dead: int = 0

    def count(self, state: str) -> None:
        if state == "pending":
            self.retried += 1
        elif state in ("unreachable", "dead"):
            setattr(self, state, getattr(self, state) + 1)


async def send_email(engine: AsyncEngine, settings: Settings, now: datetime | None = None,
                     should_stop: Callable[[], bool] = lambda: False, *,
                     lease_seconds: int = LEASE_SECONDS) -> Done | None:
    """Send the e-mail due at `now` (None: by the clock, read at each lease, acknowledgement
    and failure); None when there was none (or no SMTP server is set)."""
    if settings.smtp_url is None:
        return None
    server = parse_smtp_url(settings.smtp_url)
    tally = _Tally()
    handed_out = 0
    while handed_out < MAX_PER_RUN and not should_stop():
        async with engine.begin() as conn:
            batch = await outbox.lease(conn, CHANNEL, min(AT_ONCE, MAX_PER_RUN - handed_out),
                                       lease_seconds=lease_seconds, now=now)
        if not batch:
            break
        handed_out += len(batch)
        if not await _send_batch(engine, server, settings.mail_from, batch, now, tally):
            break  # the server is away: the rest waits for its back-off
    if not handed_out:
        return None
    line = (f"email: {tally.sent} sent, {tally.retried} retried, "
            f"{tally.unreachable} refused, {tally.dead} dead")
    return logged(Done("email", line, {"sent": tally.sent, "retried": tally.retried,
                                       "unreachable": tally.unreachable, "dead": tally.dead}))


def _lease_ran_out(leased: outbox.Leased, now: datetime | None) -> bool:
    return (now or utc_now()) >= leased.lease_expires_at


async def _send_batch(engine: AsyncEngine, server: SmtpServer, mail_from: str,
                      batch: list[outbox.Leased], now: datetime | None, tally: _Tally) -> bool:
    """Send a leased batch over one connection; False when the connection failed (what was
    not sent is failed with back-off)."""
    smtp = server.client()
    try:
        await smtp.connect()
    except (aiosmtplib.SMTPException, OSError) as error:
        await _fail_all(engine, batch, now, tally, f"connect: {_reason(error)}")
        return False
    try:
        for number, leased in enumerate(batch):
            if _lease_ran_out(leased, now):
                continue  # maybe another sender's now: it comes back on a later lease
            try:
                await smtp.send_message(email_of(leased, mail_from))
            except aiosmtplib.SMTPRecipientsRefused as error:
                refused = error.recipients[0]
                await _fail(engine, leased, now, tally, _reason(refused),
                            permanent=refused.code >= 500)
                continue
            except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError,
                    OSError) as error:
                await _fail_all(engine, batch[number:], now, tally, _reason(error))
                return False
            except aiosmtplib.SMTPException as error:  # 4xx, or a 5xx of the message itself
                await _fail(engine, leased, now, tally, _reason(error))
                continue
            async with engine.begin() as conn:
                await outbox.ack(conn, leased.id, channel=CHANNEL, now=now)
            tally.sent += 1
    finally:
        if smtp.is_connected:
            try:
                await smtp.quit()
            except (aiosmtplib.SMTPException, OSError):
                smtp.close()
    return True


async def _fail(engine: AsyncEngine, leased: outbox.Leased, now: datetime | None, tally: _Tally,
                reason: str, *, permanent: bool = False) -> None:
    async with engine.begin() as conn:
        state = await outbox.fail(conn, leased.id, channel=CHANNEL, permanent=permanent,
                                  reason=reason, now=now)
    tally.count(state)


async def _fail_all(engine: AsyncEngine, batch: list[outbox.Leased], now: datetime | None,
                    tally: _Tally, reason: str) -> None:
    for leased in batch:
        if not _lease_ran_out(leased, now):  # failing another sender's lease would free it
            await _fail(engine, leased, now, tally, reason)


def _reason(error: BaseException) -> str:
    code = getattr(error, "code", None)
    message = getattr(error, "message", None) or str(error) or type(error).__name__
    return f"{code} {message}" if code else f"{type(error).__name__}: {message}"
