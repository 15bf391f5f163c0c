"""A mail worker killed in the middle of an SMTP conversation: the mail still goes out once."""

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from commands.application import GymLedger
from tests.integration.helpers import register
from tests.processes import spawn, stop
from tests.smtp import Inbox


@pytest.fixture
def isolated_env(fresh_database: str) -> dict[str, str]:
    """Processes of this test use their own database and queue namespace."""
    return {
        **os.environ,
        "DATABASE_URL": fresh_database,
        "QUEUE_NAMESPACE": f"crash-{uuid.uuid4().hex[:8]}",
        "MAIL_REQUEUE_AFTER_SECONDS": "2",
        "EXPIRY_INTERVAL_SECONDS": "3600",
    }


@pytest.fixture
def projector_process(isolated_env: dict[str, str]) -> Iterator[None]:
    proc = spawn(["workers.projector"], isolated_env)
    yield
    stop(proc)


def worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return spawn(["dramatiq", "workers.tasks", "--processes", "1", "--threads", "1"], env)


def mail_status(url: str, recipient: str) -> str | None:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT status FROM mail_outbox WHERE recipient = %s", (recipient,)
        ).fetchone()
    return None if row is None else str(row[0])


def test_worker_killed_mid_send_delivers_exactly_once(
    isolated_env: dict[str, str], projector_process: None, inbox: Inbox
) -> None:
    url = isolated_env["DATABASE_URL"]
    email = f"slow-{uuid.uuid4().hex[:10]}@example.com"
    ledger = GymLedger(url)
    try:
        register(ledger, email=email)
    finally:
        ledger.close()
    first = worker(isolated_env)
    deadline = time.monotonic() + 30
    while email not in inbox.stalled and time.monotonic() < deadline:
        time.sleep(0.05)
    assert email in inbox.stalled, "the worker never reached the SMTP server"
    stop(first, signal.SIGKILL)  # the worker dies between RCPT and DATA
    assert mail_status(url, email) == "pending"
    second = worker(isolated_env)
    try:
        deadline = time.monotonic() + 40
        while mail_status(url, email) != "sent" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert mail_status(url, email) == "sent"
        time.sleep(2.5)  # a late duplicate would arrive now
        assert len(inbox.to(email)) == 1
    finally:
        stop(second)
