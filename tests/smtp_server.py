"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives, or refuses it."""

import asyncio
import contextlib
import email
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import default

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from services import free_port


class Mailbox:
    """aiosmtpd's handler: every message taken, parsed; `refuse` answers each recipient
    with that reply instead ("451 4.3.0 try later", "550 5.1.1 no such user"); `pauses`
    are the seconds the next recipients wait for their answer, one each (a slow server)."""

    def __init__(self) -> None:
        self.received: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.refuse: str | None = None
        self.refused = 0
        self.pauses: list[float] = []
        self.logins: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        """Takes any login, and keeps it: the test asserts what the sender gave."""
        if isinstance(auth_data, LoginPassword):
            self.logins.append((auth_data.login.decode(), auth_data.password.decode()))
        return AuthResult(success=True)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self._lock:
            pause = self.pauses.pop(0) if self.pauses else 0.0
        await asyncio.sleep(pause)
        if self.refuse is not None:
            with self._lock:
                self.refused += 1
            return self.refuse
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        parsed = email.message_from_bytes(envelope.content, policy=default)
        with self._lock:
            self.received.append(parsed)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"

    def bodies(self, message: EmailMessage) -> tuple[str, str]:
        """The plain text and the HTML of a received message, with their lines' ends as
        Python writes them (SMTP sends CRLF)."""
        return tuple(message.get_body((kind,)).get_content().replace("\r\n", "\n")
                     for kind in ("plain", "html"))


@contextlib.contextmanager
def smtp_server() -> Iterator[tuple[Mailbox, str]]:
    """A running server and its smtp:// URL."""
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port(),
                            authenticator=mailbox.authenticate, auth_require_tls=False)
    controller.start()
    try:
        yield mailbox, f"smtp://127.0.0.1:{controller.port}"
    finally:
        controller.stop()
