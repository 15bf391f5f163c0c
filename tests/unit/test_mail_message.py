"""Mail messages as receivers parse them (pure code)."""

import email
import email.policy

import pytest

from domain.validation import is_single_line
from infra.mail import Mail, build_message
from infra.mail_address import is_sender

SENDER = "noreply@gymledger.example"


def parsed(mail: Mail) -> email.message.EmailMessage:
    raw = build_message(mail, SENDER).as_bytes()
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    return message


def test_an_ascii_mail_is_sent_as_readable_7bit_text() -> None:
    mail = Mail(key="welcome:1", recipient="a@b.example", subject="Hi", body="Hello")
    raw = build_message(mail, SENDER)
    assert raw["Content-Transfer-Encoding"] == "7bit"
    assert raw["Message-ID"] == "<welcome.1@gymledger>"
    assert "Hello" in raw.as_string()


def test_non_ascii_subject_and_body_survive_the_round_trip() -> None:
    subject = "Willkommen bei Übungsraum " + "lang " * 20
    message = parsed(Mail(key="k:2", recipient="a@b.example", subject=subject, body="Grüße 💪"))
    assert message["Subject"] == subject
    assert message.get_content().rstrip("\n") == "Grüße 💪"
    assert message["To"] == "a@b.example"


@pytest.mark.parametrize("field", ["recipient", "subject"])
def test_a_line_break_in_a_header_is_refused(field: str) -> None:
    values = {"key": "k:3", "recipient": "a@b.example", "subject": "Hi", "body": "x"}
    values[field] += "\r\nBcc: victim@example.com"
    with pytest.raises(ValueError, match="line break"):
        build_message(Mail(**values), SENDER)


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85", "\x0b", "\x1e"])
def test_every_kind_of_line_break_counts(separator: str) -> None:
    mail = Mail(key="k:4", recipient="a@b.example", subject=f"Hi{separator}Bcc: x@y", body="x")
    with pytest.raises(ValueError, match="line break"):
        build_message(mail, SENDER)


@pytest.mark.parametrize(
    "recipient", ["a@b.example,c.example", "a@b.example, c@d.example", "x<a@b.example>", "nobody"]
)
def test_a_mail_goes_to_exactly_one_address(recipient: str) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        build_message(Mail(key="k:5", recipient=recipient, subject="Hi", body="x"), SENDER)


# What the mail library folds headers on: every str.splitlines() separator.
SPLITLINES_BREAKS = frozenset(
    chr(c) for c in range(0x110000) if len(f"a{chr(c)}b".splitlines()) > 1
)


def test_a_line_break_is_what_the_mail_library_splits_on_no_more_no_less() -> None:
    """One definition (domain/validation.py), used by validation on the way in and by
    the mail headers on the way out, so the two cannot drift apart."""
    refused = {chr(c) for c in range(0x110000) if not is_single_line(f"a{chr(c)}b")}
    assert refused == SPLITLINES_BREAKS


@pytest.mark.parametrize("separator", sorted(SPLITLINES_BREAKS))
def test_the_mail_headers_refuse_every_such_line_break(separator: str) -> None:
    mail = Mail(key="k:6", recipient="a@b.example", subject=f"Hi{separator}Bcc: x@y", body="x")
    with pytest.raises(ValueError, match="line break"):
        build_message(mail, SENDER)
    assert not is_sender(f"GymLedger{separator}Bcc: x@y <no-reply@x.org>")
