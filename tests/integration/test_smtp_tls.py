"""The SMTP backend over TLS, against a real aiosmtpd server with a certificate from a
CA made in the test: verification is on (chain and host name), so mail reaches a
server only when SMTP_CA_FILE, or the system's trust store, vouches for it."""

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.mail import Mail, SmtpBackend
from infra.settings import ConfigError, load_settings
from tests.smtp import SmtpServer
from tests.tls import PrivateCA, ServerCertificate

MODES = ("SMTP_TLS", "SMTP_STARTTLS")


@pytest.fixture
def ca(tmp_path: Path) -> PrivateCA:
    return PrivateCA(tmp_path)


def _serve(mode: str, certificate: ServerCertificate) -> SmtpServer:
    context = certificate.server_context()
    if mode == "SMTP_TLS":
        return SmtpServer(implicit_tls=context)
    return SmtpServer(starttls=context)


@pytest.fixture(params=MODES)
def server(request: pytest.FixtureRequest, ca: PrivateCA) -> Iterator[tuple[str, SmtpServer]]:
    mode = str(request.param)
    smtp = _serve(mode, ca.issue("127.0.0.1", "localhost"))
    smtp.start()
    yield mode, smtp
    smtp.stop()


def backend(mode: str, port: int, ca_file: Path | None = None) -> SmtpBackend:
    env = {
        "DATABASE_URL": "postgresql://unused/x",
        "REDIS_URL": "redis://unused",
        "MAIL_BACKEND": "smtp",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(port),
        "SMTP_TIMEOUT": "5",
        mode: "true",
        **({"SMTP_CA_FILE": str(ca_file)} if ca_file else {}),
    }
    return SmtpBackend(load_settings(env))


def welcome(recipient: str) -> Mail:
    return Mail(key=f"welcome:{recipient}", recipient=recipient, subject="Hi", body="Hello")


def test_a_server_the_ca_file_vouches_for_gets_the_mail(
    server: tuple[str, SmtpServer], ca: PrivateCA
) -> None:
    mode, smtp = server
    backend(mode, smtp.port, ca.ca_file).send(welcome("trusted@example.com"))
    assert len(smtp.inbox.wait_for("trusted@example.com", timeout=5)) == 1


def test_a_server_nobody_vouches_for_gets_nothing(
    server: tuple[str, SmtpServer], tmp_path: Path
) -> None:
    mode, smtp = server
    other_ca = PrivateCA(tmp_path, name="Some Other CA")
    for ca_file in (None, other_ca.ca_file):  # the system's trust store, then another CA
        with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
            backend(mode, smtp.port, ca_file).send(welcome("untrusted@example.com"))
    assert smtp.inbox.to("untrusted@example.com") == []


@pytest.mark.parametrize("mode", MODES)
def test_a_certificate_for_another_host_is_refused(mode: str, ca: PrivateCA) -> None:
    smtp = _serve(mode, ca.issue("mail.example.org"))
    smtp.start()
    try:
        with pytest.raises(ssl.SSLCertVerificationError, match="IP address mismatch"):
            backend(mode, smtp.port, ca.ca_file).send(welcome("elsewhere@example.com"))
        assert smtp.inbox.to("elsewhere@example.com") == []
    finally:
        smtp.stop()


def test_settings_refuse_both_tls_modes_and_a_missing_ca_file(tmp_path: Path) -> None:
    base = {"DATABASE_URL": "postgresql://x/y", "REDIS_URL": "redis://x"}
    with pytest.raises(ConfigError) as error:
        load_settings(
            {**base, "SMTP_TLS": "true", "SMTP_STARTTLS": "1", "SMTP_CA_FILE": str(tmp_path / "no")}
        )
    assert "SMTP_STARTTLS and SMTP_TLS" in str(error.value)
    assert "SMTP_CA_FILE" in str(error.value)
    implicit = load_settings({**base, "SMTP_TLS": "yes"})
    assert (implicit.smtp_tls, implicit.smtp_starttls, implicit.smtp_port) == (True, False, 465)
    assert load_settings({**base, "SMTP_TLS": "yes", "SMTP_PORT": "2465"}).smtp_port == 2465
    assert load_settings(base).smtp_port == 25
