"""The worker's direct rendering of a mail is byte for byte what the email package
writes, for any mail: plain ones take the fast path, the rest fall back."""

import io
from email.generator import BytesGenerator
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

import infra.mail
from infra.mail import Mail, build_message, message_bytes, plain_bytes

SENDERS = ["GymLedger <no-reply@gymledger.local>", "no-reply@example.com", "Zoë <z@example.com>"]
text = st.text(st.characters(codec="utf-8"), max_size=120)
ascii_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=90)
mails = st.builds(
    Mail,
    key=st.from_regex(r"[a-z-]{1,20}:[0-9a-f-]{1,40}", fullmatch=True),
    recipient=st.sampled_from(["a@example.com", "b1_23@bench.example", "x@ünï.example"])
    | st.from_regex(r"[a-z0-9._]{1,70}@example\.com", fullmatch=True),
    subject=ascii_text | text.filter(lambda s: "\n" not in s and "\r" not in s),
    body=ascii_text | text | st.text(st.sampled_from("ab \r\n\t"), max_size=30),
)


def stdlib_bytes(mail: Mail, sender: str) -> bytes | type[Exception]:
    try:
        return build_message(mail, sender).as_bytes()
    except ValueError:
        return ValueError


@example(
    Mail(key="welcome-customer:1", recipient="a@example.com", subject="Hi", body="x\r\ny\rz\n"),
    SENDERS[0],
)
@example(Mail(key="k:1", recipient="a@example.com", subject="a  b", body="x"), SENDERS[0])
@example(Mail(key="k:1", recipient="a@example.com", subject="S" * 70, body="x"), SENDERS[0])
@given(mails, st.sampled_from(SENDERS))
def test_direct_bytes_are_the_email_packages(mail: Mail, sender: str) -> None:
    expected = stdlib_bytes(mail, sender)
    try:
        rendered: bytes | type[Exception] = message_bytes(mail, sender)
    except ValueError:
        rendered = ValueError
    assert rendered == expected


def test_a_plain_mail_is_written_without_the_email_package(monkeypatch: Any) -> None:
    mail = Mail(key="welcome-customer:1", recipient="a@example.com", subject="Hi", body="Hello")
    expected = build_message(mail, SENDERS[0]).as_bytes()
    monkeypatch.setattr(infra.mail, "build_message", None)  # any use of it would fail
    assert message_bytes(mail, SENDERS[0]) == expected


@given(mails, st.sampled_from(SENDERS))
def test_direct_smtp_bytes_are_what_send_message_would_send(mail: Mail, sender: str) -> None:
    try:
        rendered = plain_bytes(mail, sender, linesep="\r\n")
    except ValueError:
        rendered = None
    if rendered is None:
        return  # not plain: send_message itself sends it
    out = io.BytesIO()
    BytesGenerator(out).flatten(build_message(mail, sender), linesep="\r\n")
    assert rendered == out.getvalue()
