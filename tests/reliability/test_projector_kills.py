"""SIGKILL the projector again and again while commands are written: afterwards the read
tables equal a full replay, and every welcome mail went out exactly once."""

import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from typing import Any

import psycopg

from commands.application import GymLedger
from commands.context import CommandContext
from commands.customers import RegisterCustomer, register_customer
from domain.customer import CustomerDetails
from tests.integration.helpers import head_position, register, wait_projected
from tests.processes import spawn, stop
from tests.reliability.scale import size
from tests.smtp import Inbox


def test_projector_killed_repeatedly_loses_and_repeats_nothing(
    fresh_database: str, inbox: Inbox
) -> None:
    kills_wanted = size(5, 20)
    env = {
        **os.environ,
        "DATABASE_URL": fresh_database,
        "PROJECTOR_BATCH_SIZE": "7",
        "QUEUE_NAMESPACE": f"kills-{uuid.uuid4().hex[:8]}",
        "MAIL_REQUEUE_AFTER_SECONDS": "5",
    }
    worker = spawn(["dramatiq", "workers.tasks", "--processes", "1", "--threads", "2"], env)
    ledger = GymLedger(fresh_database)
    tag = uuid.uuid4().hex[:8]
    gyms = [register(ledger, email=f"owner-{tag}-{i}@example.com").id for i in range(3)]
    emails: list[str] = [f"owner-{tag}-{i}@example.com" for i in range(3)]
    writing = threading.Event()
    writing.set()

    def write() -> None:
        i = 0
        while writing.is_set():
            email = f"member-{tag}-{i}@example.com"
            details = CustomerDetails(first_name="K", last_name=str(i), email=email)
            command = RegisterCustomer(gym_id=gyms[i % 3], details=details)
            register_customer(ledger, command, CommandContext.system())
            emails.append(email)
            i += 1
            time.sleep(0.01)

    writer = threading.Thread(target=write)
    writer.start()
    rng = random.Random(11)
    kills = 0
    try:
        while kills < kills_wanted:
            projector = spawn(["workers.projector"], env)
            time.sleep(rng.uniform(0.2, 0.9))
            stop(projector, signal.SIGKILL)
            kills += 1
    finally:
        writing.clear()
        writer.join()
    final = spawn(["workers.projector"], env)
    try:
        wait_projected(fresh_database, head_position(fresh_database), timeout=60)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with psycopg.connect(fresh_database) as conn:
                pending = conn.execute(
                    "SELECT count(*) FROM mail_outbox WHERE status <> 'sent'"
                ).fetchone()
            if pending == (0,):
                break
            time.sleep(0.2)
        replay = subprocess.run(
            [sys.executable, "-m", "workers.cli", "replay", "--verify"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert replay.returncode == 0, replay.stdout + replay.stderr
        assert pending == (0,)
        time.sleep(1.0)  # a duplicate would arrive now
        counts: dict[str, Any] = {e: len(inbox.to(e)) for e in emails}
        assert set(counts.values()) == {1}, {e: n for e, n in counts.items() if n != 1}
        assert kills == kills_wanted
    finally:
        stop(final)
        stop(worker)
        ledger.close()
