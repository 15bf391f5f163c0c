"""Welcome mail through outbox, dramatiq on Redis and a real SMTP server."""

import threading
import time
from typing import Any

import psycopg
from litestar.testing import TestClient

from infra.mail import SmtpBackend
from tests.conftest import signup_body
from tests.smtp import Inbox


def outbox_row(database_url: str, recipient: str) -> tuple[Any, ...] | None:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT id, status, attempts, last_error FROM mail_outbox WHERE recipient = %s",
            (recipient,),
        ).fetchone()


def wait_status(
    database_url: str, recipient: str, status: str, timeout: float = 30
) -> tuple[Any, ...]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = outbox_row(database_url, recipient)
        if row is not None and row[1] == status:
            return row
        time.sleep(0.05)
    raise AssertionError(f"mail to {recipient} never reached {status}: {row}")


def test_new_owner_gets_exactly_one_welcome_mail(
    client: TestClient[Any], inbox: Inbox, settings: Any
) -> None:
    body = signup_body(name="Welcome Gym")
    assert client.post("/api/v1/auth/signup", json=body).status_code == 201
    mails = inbox.wait_for(body["email"])
    assert len(mails) == 1
    assert "Welcome Gym" in mails[0]["Subject"]
    assert mails[0]["Message-ID"].startswith("<welcome-gym.")
    row = wait_status(settings.database_url, body["email"], "sent")
    # Delivering the same outbox row again (a redelivered message) sends nothing.
    from workers.mail import deliver

    with psycopg.connect(settings.database_url) as conn:
        deliver(conn, row[0], settings, SmtpBackend(settings))
    time.sleep(0.5)
    assert len(inbox.to(body["email"])) == 1


def test_refused_mail_is_retried_then_dead_lettered_without_failing_signup(
    client: TestClient[Any], inbox: Inbox, settings: Any
) -> None:
    body = signup_body(email=f"refuse-{time.time_ns()}@example.com")
    assert client.post("/api/v1/auth/signup", json=body).status_code == 201
    row = wait_status(settings.database_url, body["email"], "failed", timeout=60)
    assert row[2] == settings.mail_max_retries + 1  # first try plus every retry
    assert "550" in row[3]
    assert inbox.to(body["email"]) == []


def test_owner_sees_sent_refused_and_timed_out_mail_in_the_mail_log(
    client: TestClient[Any], settings: Any
) -> None:
    from tests.conftest import bearer, signup_and_login

    _, token = signup_and_login(client)
    owner = bearer(token)
    refused = f"refuse-{time.time_ns()}@example.com"
    slow = f"timeout-{time.time_ns()}@example.com"
    for email in (refused, slow, f"ok-{time.time_ns()}@example.com"):
        body = {"first_name": "Mail", "last_name": "Log", "email": email}
        assert client.post("/api/v1/customers", headers=owner, json=body).status_code == 201
    wait_status(settings.database_url, refused, "failed", timeout=60)
    wait_status(settings.database_url, slow, "failed", timeout=90)
    log = client.get("/api/v1/mails", headers=owner).json()
    by_recipient = {entry["recipient"]: entry for entry in log}
    assert by_recipient[slow]["attempts"] == settings.mail_max_retries + 1
    assert "timed out" in by_recipient[slow]["last_error"].lower()
    assert "550" in by_recipient[refused]["last_error"]
    assert "body" not in log[0]
    failed = client.get("/api/v1/mails", headers=owner, params={"status": "failed"}).json()
    assert {e["recipient"] for e in failed} == {refused, slow}
    assert client.get("/api/v1/mails", headers=owner, params={"status": "lost"}).status_code == 422
    _, other = signup_and_login(client)
    assert slow not in {
        e["recipient"] for e in client.get("/api/v1/mails", headers=bearer(other)).json()
    }
    metrics = client.get("/metrics").text
    assert "gymledger_mail_failed_total" in metrics
    assert "gymledger_mail_retried_total" in metrics


def test_a_message_that_arrives_before_the_relay_commits_is_still_delivered(
    inbox: Inbox, settings: Any
) -> None:
    """The relay sends the message inside the transaction that marks the mail handed
    over; a fast worker gets it while that transaction still holds the row."""
    from workers.mail import deliver

    recipient = f"race-{time.time_ns()}@example.com"
    with psycopg.connect(settings.database_url) as relay:
        row = relay.execute(
            "INSERT INTO mail_outbox (dedupe_key, gym_id, recipient, subject, body,"
            " correlation_id, enqueued_at) VALUES (%s, gen_random_uuid(), %s, 'Race',"
            " 'Hello', 'test', now()) RETURNING id",
            (recipient, recipient),
        ).fetchone()
        relay.commit()
        assert row is not None
        relay.execute("SELECT 1 FROM mail_outbox WHERE id = %s FOR UPDATE", (row[0],))

        def worker() -> None:
            with psycopg.connect(settings.database_url) as conn:
                deliver(conn, row[0], settings, SmtpBackend(settings))

        thread = threading.Thread(target=worker)
        thread.start()
        time.sleep(0.5)  # the worker now waits on the relay's lock
        assert outbox_row(settings.database_url, recipient)[1] == "pending"  # type: ignore[index]
        relay.commit()
        thread.join(timeout=10)
    assert inbox.wait_for(recipient)
    assert wait_status(settings.database_url, recipient, "sent")[2] == 1
