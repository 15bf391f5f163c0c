"""Mail messages as receivers parse them (pure code)."""

import email
import email.policy

import pytest

from infra.mail import Mail, build_message

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
