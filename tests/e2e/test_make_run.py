"""End to end over real HTTP: `gymledger run` starts API, projector and worker together."""

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.conftest import signup_body
from tests.smtp import Inbox, free_port

ROOT = Path(__file__).resolve().parents[2]


def start_system(env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "workers.cli", "run"],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def wait_healthy(base: str, proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, (proc.stdout.read() if proc.stdout else b"").decode()[-3000:]
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("system did not become healthy")


def owner_over_http(base: str) -> str:
    """Sign a new gym up and log in over real HTTP; returns its bearer token."""
    body = signup_body()
    httpx.post(f"{base}/api/v1/auth/signup", json=body, timeout=10).raise_for_status()
    login = httpx.post(
        f"{base}/api/v1/auth/login",
        timeout=10,
        data={"username": body["email"], "password": body["password"]},
    )
    token: str = login.json()["access_token"]
    return token


def stop_system(proc: subprocess.Popen[bytes]) -> tuple[int, str]:
    proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
    out, _ = proc.communicate(timeout=60)
    return proc.returncode, out.decode()


def check_logs(output: str, secrets: list[str]) -> None:
    """Every log line is one JSON object; one request id follows signup into the worker."""
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert lines
    access = [x for x in lines if x["logger"] == "gymledger.access" and x["request_id"] == "e2e-1"]
    assert access[0]["route"] == "/api/v1/auth/signup"
    assert {"method", "status", "duration_ms", "level"} <= set(access[0])
    sent = [x for x in lines if x["logger"] == "gymledger.mail" and x["request_id"] == "e2e-1"]
    assert sent, "the worker should log the welcome mail under the signup's request id"
    for secret in secrets:
        assert secret not in output


@pytest.fixture
def running_system(fresh_database: str) -> Iterator[dict[str, Any]]:
    """The whole system on a database and queue of its own, so only its processes act."""
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "LOG_LEVEL": "INFO",
        "DATABASE_URL": fresh_database,
        "QUEUE_NAMESPACE": f"e2e-{port}",
    }
    proc = start_system(env, ROOT)
    system: dict[str, Any] = {"base": f"http://127.0.0.1:{port}", "secrets": []}
    try:
        wait_healthy(system["base"], proc)
        yield system
    finally:
        if proc.poll() is None:
            code, output = stop_system(proc)
            assert code == 0, output[-3000:]
            assert "GymLedger stopped" in output
            check_logs(output, system["secrets"])


def test_owner_journey_over_http(running_system: dict[str, Any], inbox: Inbox) -> None:
    base = running_system["base"]
    api = f"{base}/api/v1"
    body = signup_body(name="Over The Wire")
    with httpx.Client(timeout=10) as http:
        created = http.post(f"{api}/auth/signup", json=body, headers={"X-Request-ID": "e2e-1"})
        assert created.status_code == 201, created.text
        assert created.headers["x-request-id"] == "e2e-1"
        token = http.post(
            f"{api}/auth/login", data={"username": body["email"], "password": body["password"]}
        ).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        me = http.get(f"{api}/gyms/me", headers=auth)
        assert me.json()["name"] == "Over The Wire"
        patched = http.patch(f"{api}/gyms/me", headers=auth, json={"monthly_fee_cents": 0})
        assert patched.json()["monthly_fee_cents"] == 0
        assert http.get(f"{api}/gyms/me", headers=auth).json()["monthly_fee_cents"] == 0
        assert len(inbox.wait_for(body["email"])) == 1
        member = {"first_name": "Wire", "last_name": "Member", "email": f"m-{body['email']}"}
        created_member = http.post(
            f"{api}/customers", json=member, headers={**auth, "Idempotency-Key": "e2e-member"}
        )
        assert created_member.status_code == 201, created_member.text
        member_url = f"{api}/customers/{created_member.json()['id']}"
        etag = http.get(member_url, headers=auth).headers["etag"]
        renamed = http.patch(
            member_url, json={"first_name": "Wired"}, headers={**auth, "If-Match": etag}
        )
        assert renamed.status_code == 200
        stale = http.patch(member_url, json={"notes": "x"}, headers={**auth, "If-Match": etag})
        assert stale.status_code == 412
        listed = http.get(f"{api}/customers", params={"search": "wired"}, headers=auth)
        assert [c["id"] for c in listed.json()] == [created_member.json()["id"]]
        assert listed.headers["x-total-count"] == "1"
        assert len(inbox.wait_for(member["email"])) == 1
        assert http.delete(member_url, headers=auth).status_code == 204
        assert http.get(member_url, headers=auth).status_code == 404
        assert http.delete(f"{api}/gyms/me", headers=auth).status_code == 204
        assert http.get(f"{api}/gyms/me", headers=auth).status_code == 401
        assert http.get(f"{base}/schema/openapi.json").status_code == 200
        # Metrics of the worker and projector processes show up in the API's /metrics.
        text = http.get(f"{base}/metrics").text
        for family in (
            "gymledger_mail_sent_total 2.0",
            'gymledger_tasks_total{actor="send_mail"',
            'gymledger_projection_position{projection="read_model"}',
        ):
            assert family in text, family
        running_system["secrets"] += [body["password"], token]


def test_embedded_servers_when_no_urls_are_given(tmp_path: Path, inbox: Any) -> None:
    """The default for a fresh machine: private PostgreSQL and Redis under ./.data/."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update({"PORT": str(port), "MAIL_BACKEND": "directory", "MAIL_DIR": str(tmp_path / "mail")})
    proc = start_system(env, tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, proc, timeout=180)
        body = signup_body()
        created = httpx.post(f"{base}/api/v1/auth/signup", json=body, timeout=10)
        assert created.status_code == 201, created.text
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not list((tmp_path / "mail").glob("*.eml")):
            time.sleep(0.1)
        mails = list((tmp_path / "mail").glob("*.eml"))
        assert len(mails) == 1
        assert body["email"] in mails[0].read_text()
    finally:
        code, output = stop_system(proc)
    assert code == 0, output[-3000:]
    assert (tmp_path / ".data" / "postgres").is_dir()
    leftover = subprocess.run(
        ["pgrep", "-f", str(tmp_path / ".data")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert leftover.stdout.strip() == "", "embedded servers must stop with the system"


def server_has_read(server_port: int, client_port: int, timeout: float = 30) -> None:
    """Wait until the server side of one loopback connection has nothing left unread.

    /proc/net/tcp lists every IPv4 socket with its receive queue; an empty queue on the
    server's end means the API process has read the bytes sent to it so far.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            local, remote, state, queues = line.split()[1:5]
            ports = (int(local.split(":")[1], 16), int(remote.split(":")[1], 16))
            unread = int(queues.split(":")[1], 16)
            if ports == (server_port, client_port) and state == "01" and unread == 0:
                return
        time.sleep(0.01)
    raise AssertionError("the server never read the request")


def test_sigterm_finishes_requests_in_flight(fresh_database: str) -> None:
    """A signup in flight when SIGTERM arrives still completes and is stored.

    The request is sent in two parts: its headers and half its body, then (once the server
    has read them, so the request is surely in flight) SIGTERM, then the rest of the body.
    """
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "DATABASE_URL": fresh_database,
        "QUEUE_NAMESPACE": f"e2e-{port}",
    }
    proc = start_system(env, ROOT)
    wait_healthy(f"http://127.0.0.1:{port}", proc)
    payload = json.dumps(signup_body()).encode()
    half = len(payload) // 2
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.putrequest("POST", "/api/v1/auth/signup")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(len(payload)))
    conn.endheaders(message_body=payload[:half])
    assert conn.sock is not None
    server_has_read(port, conn.sock.getsockname()[1])
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)  # give the shutdown a head start on the rest of the request
    conn.send(payload[half:])
    response = conn.getresponse()
    answer = response.read()
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out.decode()[-3000:]
    assert response.status == 201, answer
    with psycopg.connect(fresh_database) as db:
        stored = db.execute(
            "SELECT count(*) FROM gymledger_events WHERE originator_id = %s",
            (json.loads(answer)["id"],),
        ).fetchone()
    assert stored == (1,)
