"""Mail backends: console (default), SMTP, and a directory sink.

Every message carries a Message-ID derived from its outbox key. Delivery is
at-least-once (a crash between the SMTP "250 OK" and our commit sends again), and
the stable Message-ID lets receiving servers and clients drop the duplicate.
"""

import contextlib
import email.utils
import functools
import os
import re
import smtplib
import ssl
import sys
from collections.abc import Callable, Sequence
from email.header import Header
from email.message import Message
from email.mime.text import MIMEText
from pathlib import Path
from typing import Protocol, cast

import msgspec

from domain.validation import is_single_line
from infra.mail_address import is_one_address
from infra.settings import Settings


class Mail(msgspec.Struct, frozen=True):
    key: str  # stable across retries, e.g. "welcome-gym:<uuid>"
    recipient: str
    subject: str
    body: str


class MailBackend(Protocol):
    def send(self, mail: Mail) -> None: ...

    def send_many(self, mails: Sequence[Mail]) -> list[Exception | None]:
        """Send each; per mail, the error it failed with (None: sent)."""
        ...


def send_each(backend: MailBackend, mails: Sequence[Mail]) -> list[Exception | None]:
    """send_many for backends without a session to share."""
    results: list[Exception | None] = []
    for mail in mails:
        try:
            backend.send(mail)
        except Exception as error:  # any failure is this mail's, retried later
            results.append(error)
        else:
            results.append(None)
    return results


def build_message(mail: Mail, sender: str) -> Message:
    """A text/plain message, in 7 bits when the text is ASCII (readable as sent).

    Built with the compat32 classes: `EmailMessage` parses every header it is given
    through the header registry, which made building a welcome mail cost more CPU
    than everything else the worker does for it (bench/README.md).
    """
    for value in (sender, mail.recipient, mail.subject):
        if not is_single_line(value):  # compat32 would not stop header injection
            raise ValueError("line break in a mail header")
    if not is_one_address(mail.recipient):
        raise ValueError("a mail goes to exactly one recipient address")
    message = MIMEText(mail.body, "plain", "us-ascii" if mail.body.isascii() else "utf-8")
    message["From"] = sender
    message["To"] = mail.recipient
    if mail.subject.isascii():
        message["Subject"] = mail.subject
    else:  # RFC 2047 encoded words; the stubs omit that Message takes a Header here
        message["Subject"] = cast(str, Header(mail.subject, "utf-8"))
    message["Message-ID"] = f"<{mail.key.replace(':', '.')}@gymledger>"
    return message


# A header the email package would write unchanged: printable ASCII words, one space
# between them, the whole line within 78 characters (compat32 folds longer ones).
_PLAIN_HEADER = re.compile(r"[\x21-\x7e]+(?: [\x21-\x7e]+)*")
_FOLD_AT = 78
_LINE_END = re.compile(r"\r\n|\r|\n")


def message_bytes(mail: Mail, sender: str) -> bytes:
    """build_message(mail, sender).as_bytes(), written directly when the mail is plain
    (see plain_bytes)."""
    return plain_bytes(mail, sender) or build_message(mail, sender).as_bytes()


def plain_bytes(mail: Mail, sender: str, linesep: str = "\n") -> bytes | None:
    """The bytes the email package writes for build_message(mail, sender) with
    `linesep` (as_bytes uses "\n", smtplib's send_message "\r\n"), written directly
    when every header is plain ASCII and short and the body ASCII; None otherwise.
    The package's generator cost the worker 0.15 ms per mail, most of its work for
    one (bench/README.md). tests/unit/test_mail_bytes.py holds both to the same bytes
    for any mail."""
    message_id = f"<{mail.key.replace(':', '.')}@gymledger>"
    headers = (
        ("From", sender),
        ("To", mail.recipient),
        ("Subject", mail.subject),
        ("Message-ID", message_id),
    )
    plain = mail.body.isascii() and all(
        _PLAIN_HEADER.fullmatch(value) and len(name) + 2 + len(value) <= _FOLD_AT
        for name, value in headers
    )
    if not plain or not is_one_address(mail.recipient):
        return None  # build_message decides, and refuses what it must
    lines = [
        'Content-Type: text/plain; charset="us-ascii"',
        "MIME-Version: 1.0",
        "Content-Transfer-Encoding: 7bit",
        *(f"{name}: {value}" for name, value in headers),
        "",
        linesep.join(_LINE_END.split(mail.body)),
    ]
    return linesep.join(lines).encode("ascii")


class ConsoleBackend:
    def __init__(self, sender: str) -> None:
        self.sender = sender

    def send(self, mail: Mail) -> None:
        sys.stdout.write(build_message(mail, self.sender).as_string() + "\n")
        sys.stdout.flush()

    def send_many(self, mails: Sequence[Mail]) -> list[Exception | None]:
        return send_each(self, mails)


_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)


class DirectoryBackend:
    """One .eml file per mail, named by its key: a second send overwrites, never adds."""

    def __init__(self, directory: Path, sender: str) -> None:
        self.directory = directory
        self.sender = sender
        self._prefix = f"{directory}{os.sep}"

    def send(self, mail: Mail) -> None:
        # Plain os calls, and the directory made only when it is missing: pathlib's
        # objects and a mkdir per mail were a third of the worker's CPU per mail.
        final = self._prefix + mail.key.replace(":", "_").replace("/", "_") + ".eml"
        tmp = final + ".tmp"
        data = message_bytes(mail, self.sender)
        try:
            fd = os.open(tmp, _NEW_FILE, 0o666)
        except FileNotFoundError:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, _NEW_FILE, 0o666)
        try:
            rest = memoryview(data)
            while rest:  # a regular file takes it all at once; a full disk may not
                rest = rest[os.write(fd, rest) :]
        finally:
            os.close(fd)
        os.replace(tmp, final)  # atomic: readers never see half a mail

    def send_many(self, mails: Sequence[Mail]) -> list[Exception | None]:
        return send_each(self, mails)


def tls_context(settings: Settings) -> ssl.SSLContext:
    """Verifies the server's certificate chain and host name, against the system's
    trust store or SMTP_CA_FILE (a private CA). smtplib without a context verifies
    nothing, so anyone on the path could read the mail and the SMTP password."""
    return ssl.create_default_context(cafile=settings.smtp_ca_file or None)


class SmtpBackend:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # Built once: loading the trust store costs more than a TLS handshake.
        secure = settings.smtp_tls or settings.smtp_starttls
        self.context = tls_context(settings) if secure else None
        # The envelope sender, as send_message takes it from the From header.
        self.envelope_from = email.utils.parseaddr(settings.mail_from)[1]

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        if s.smtp_tls:
            return smtplib.SMTP_SSL(
                s.smtp_host, s.smtp_port, timeout=s.smtp_timeout, context=self.context
            )
        return smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout)

    def _session(self) -> smtplib.SMTP:
        s = self.settings
        smtp = self._connect()
        try:
            if s.smtp_starttls:
                smtp.starttls(context=self.context)
            if s.smtp_username:
                smtp.login(s.smtp_username, s.smtp_password)
        except BaseException:
            smtp.close()
            raise
        return smtp

    def send(self, mail: Mail) -> None:
        with self._session() as smtp:
            self._deliver(mail, smtp)

    def _deliver(self, mail: Mail, smtp: smtplib.SMTP) -> None:
        sender = self.settings.mail_from
        flat = plain_bytes(mail, sender, linesep="\r\n")
        if flat is None:
            smtp.send_message(build_message(mail, sender))
        else:  # what send_message would send, without the email package's generator
            recipient = email.utils.parseaddr(mail.recipient)[1]  # as send_message does
            smtp.sendmail(self.envelope_from, [recipient], flat)

    def send_many(self, mails: Sequence[Mail]) -> list[Exception | None]:
        """One SMTP session (connection, TLS, login) for the mails of a batch.

        A mail during which the connection breaks (it timed out, was reset or closed,
        a 421) fails alone and the rest go on in a new session: the batch is retried
        in the same order, so otherwise one mail the server chokes on would fail every
        mail after it on every retry, until all of them were dead-lettered. When no
        session can be opened, the rest of the batch fails with that error.
        """
        results: list[Exception | None] = []
        session = _Session(self._session)
        with session:
            for done, mail in enumerate(mails):
                try:
                    session.send(functools.partial(self._deliver, mail))
                except _NoSession as error:
                    return results + [error.reason] * (len(mails) - done)
                except Exception as error:  # a refused recipient fails only its mail
                    results.append(error)
                else:
                    results.append(None)
        return results


class _NoSession(Exception):
    def __init__(self, reason: Exception) -> None:
        super().__init__(str(reason))
        self.reason = reason


class _Session:
    """An SMTP session opened when first needed and again after it broke."""

    def __init__(self, open_session: Callable[[], smtplib.SMTP]) -> None:
        self.open_session = open_session
        self.smtp: smtplib.SMTP | None = None

    def __enter__(self) -> "_Session":
        return self

    def __exit__(self, *_: object) -> None:
        if self.smtp is not None:
            with contextlib.suppress(OSError):  # smtplib's errors are OSErrors too
                self.smtp.quit()
            self.smtp.close()

    def _connected(self) -> smtplib.SMTP:
        if self.smtp is None:
            try:
                self.smtp = self.open_session()
            except Exception as error:
                raise _NoSession(error) from error
        return self.smtp

    def _drop(self) -> None:
        if self.smtp is not None:
            self.smtp.close()
            self.smtp = None

    def send(self, deliver: Callable[[smtplib.SMTP], None]) -> None:
        try:
            deliver(self._connected())
        except smtplib.SMTPServerDisconnected:  # also how smtplib reports a read timeout
            self._drop()  # the next mail gets a new session
            raise
        except smtplib.SMTPResponseException as error:
            if error.smtp_code == 421:  # the server is closing this session
                self._drop()
            raise
        except smtplib.SMTPException:
            raise  # the server answered (a refused recipient): the session is still good
        except OSError:  # the socket's own failure (smtplib's errors are OSErrors too)
            self._drop()
            raise


def backend_from_settings(settings: Settings) -> MailBackend:
    match settings.mail_backend:
        case "smtp":
            return SmtpBackend(settings)
        case "directory":
            return DirectoryBackend(Path(settings.mail_dir), settings.mail_from)
        case _:
            return ConsoleBackend(settings.mail_from)
