"""A real SMTP server for the tests (aiosmtpd), recording what it accepts.

Recipients starting with "refuse-" get a permanent 550, so tests can exercise
retries and the dead-letter state against a real protocol exchange.
"""

import asyncio
import email
import email.policy
import socket
import ssl
import threading
import time
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Inbox:
    def __init__(self) -> None:
        self._messages: list[EmailMessage] = []
        self._lock = threading.Lock()
        self.stalled: set[str] = set()  # "slow-" recipients held up once, mid-conversation

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address.startswith("refuse-"):
            return "550 mailbox unavailable"
        if address.startswith("timeout-"):
            await asyncio.sleep(30)  # longer than the worker's SMTP_TIMEOUT, every time
        if address.startswith("slow-") and address not in self.stalled:
            self.stalled.add(address)  # the client now waits: a moment to kill it
            await asyncio.sleep(10)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self._messages.append(message)
        return "250 Message accepted for delivery"

    def to(self, recipient: str) -> list[EmailMessage]:
        with self._lock:
            return [m for m in self._messages if m["To"] == recipient]

    def wait_for(self, recipient: str, count: int = 1, timeout: float = 15.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.to(recipient)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        return self.to(recipient)


class SmtpServer:
    """Plain SMTP by default; `implicit_tls`: TLS from the first byte (port 465 style);
    `starttls`: plain until STARTTLS, which it requires before accepting mail."""

    def __init__(
        self,
        implicit_tls: ssl.SSLContext | None = None,
        starttls: ssl.SSLContext | None = None,
    ) -> None:
        self.inbox = Inbox()
        self.port = free_port()
        tls: dict[str, Any] = {}
        if implicit_tls is not None:
            tls["ssl_context"] = implicit_tls
        if starttls is not None:
            tls |= {"tls_context": starttls, "require_starttls": True}
        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port, **tls)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()
