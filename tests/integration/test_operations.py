"""What operators rely on: health states, metrics, error ids, headers, limits, config."""

import dataclasses
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from litestar.testing import TestClient

from commands.application import GymLedger
from infra.logs import JsonFormatter
from tests.conftest import bearer, signup_and_login, signup_body, unique_email
from tests.integration.helpers import head_position, register

API = "/api/v1"


@pytest.fixture
def app_with(settings: Any, projector: None) -> Iterator[Any]:
    """Build an extra API instance with some settings changed."""
    from api.app import create_app

    clients: list[TestClient[Any]] = []

    def build(**changes: Any) -> TestClient[Any]:
        client = TestClient(create_app(dataclasses.replace(settings, **changes)),
                            raise_server_exceptions=False)  # fmt: skip
        client.__enter__()
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.__exit__(None, None, None)


def _gauge(client: TestClient[Any], check: str) -> str:
    """The value /metrics gives gymledger_health_check for one check."""
    prefix = f'gymledger_health_check{{check="{check}"}} '
    lines = [line for line in client.get("/metrics").text.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, lines
    return lines[0].removeprefix(prefix)


def test_health_live_and_ready(fresh_database: str, app_with: Any) -> None:
    # A database of its own: the session's has mail that other tests made fail.
    client = app_with(database_url=fresh_database)
    assert client.get("/health/live").json() == {"status": "ok"}
    ready = client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ok"
    assert ready.json()["failing"] == []
    assert ready.json()["checks"]["database"] == "ok"
    assert ready.json()["checks"]["redis"] == "ok"
    legacy = client.get("/health").json()
    assert (legacy["status"], legacy["failing"]) == ("ok", [])
    assert set(legacy["checks"]) >= {"database", "redis", "projector_lag_events", "mail"}
    for check in ("database", "redis", "projector_lag", "projector_parked", "mail"):
        assert _gauge(client, check) == "1.0", check


def test_only_an_unreachable_database_makes_the_api_unready(
    fresh_database: str, app_with: Any
) -> None:
    no_redis = app_with(redis_url="redis://127.0.0.1:1/0", database_url=fresh_database)
    assert no_redis.get("/health/live").status_code == 200
    # Commands and queries work without Redis: the pod stays in the load balancer.
    response = no_redis.get("/health/ready")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["failing"]) == ("degraded", ["redis"])
    assert response.json()["checks"]["redis"].startswith("unavailable")
    legacy = no_redis.get("/health").json()
    assert (legacy["status"], legacy["failing"]) == ("degraded", ["redis"])
    assert _gauge(no_redis, "redis") == "0.0"
    assert _gauge(no_redis, "database") == "1.0"
    no_db = app_with(database_url="postgresql://postgres@127.0.0.1:1/nothing?connect_timeout=1")
    assert no_db.get("/health/live").status_code == 200
    response = no_db.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert response.json()["failing"] == ["database"]
    legacy = no_db.get("/health")
    assert legacy.status_code == 200  # the legacy endpoint reports, never fails
    assert (legacy.json()["status"], legacy.json()["failing"]) == ("degraded", ["database"])
    assert _gauge(no_db, "database") == "0.0"


def test_a_lagging_projector_degrades_health_and_leaves_the_api_ready(
    fresh_database: str, app_with: Any
) -> None:
    # Events no projector applies: exactly the log's head is the lag.
    ledger = GymLedger(fresh_database)
    try:
        register(ledger)
        register(ledger)
    finally:
        ledger.close()
    lag = head_position(fresh_database)
    assert lag > 1
    lagging = app_with(database_url=fresh_database, ready_max_lag_events=lag - 1)
    ready = lagging.get("/health/ready")
    assert ready.status_code == 200
    assert (ready.json()["status"], ready.json()["failing"]) == ("degraded", ["projector_lag"])
    assert ready.json()["checks"]["projector_lag_events"] == lag
    legacy = lagging.get("/health").json()
    assert (legacy["status"], legacy["failing"]) == ("degraded", ["projector_lag"])
    assert _gauge(lagging, "projector_lag") == "0.0"
    # At the threshold itself it is not lagging yet.
    tolerant = app_with(database_url=fresh_database, ready_max_lag_events=lag)
    ready = tolerant.get("/health/ready")
    assert (ready.status_code, ready.json()["status"], ready.json()["failing"]) == (200, "ok", [])
    assert _gauge(tolerant, "projector_lag") == "1.0"


def test_dead_lettered_mail_degrades_health_until_requeued(
    fresh_database: str, app_with: Any
) -> None:
    client = app_with(database_url=fresh_database)
    with psycopg.connect(fresh_database, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO mail_outbox (dedupe_key, gym_id, recipient, subject, body,"
            " correlation_id, status, attempts, last_error)"
            " VALUES ('dead', gen_random_uuid(), 'a@b.example', 's', 'b', 'c', 'failed', 3,"
            " '550 mailbox unavailable')"
        )
        ready = client.get("/health/ready")
        assert ready.status_code == 200
        assert (ready.json()["status"], ready.json()["failing"]) == ("degraded", ["mail"])
        assert ready.json()["checks"]["mail"] == {"pending": 0, "failed": 1}
        assert _gauge(client, "mail") == "0.0"
        assert "gymledger_mail_outbox_failed 1.0" in client.get("/metrics").text
        # The runbook's requeue, once the cause is fixed: owed again, no longer failed.
        conn.execute("UPDATE mail_outbox SET status = 'pending', attempts = 0")
    health = client.get("/health").json()
    assert (health["status"], health["failing"]) == ("ok", [])
    assert health["checks"]["mail"] == {"pending": 1, "failed": 0}
    assert _gauge(client, "mail") == "1.0"


def test_metrics_after_real_traffic(client: TestClient[Any], inbox: Any) -> None:
    gym, token = signup_and_login(client)
    owner = bearer(token)
    created = client.post(
        f"{API}/customers",
        headers=owner,
        json={"first_name": "M", "last_name": "Etric", "email": unique_email()},
    )
    url = f"{API}/customers/{created.json()['id']}"
    client.get(url, headers=owner)
    client.patch(url, headers={**owner, "If-Match": '"99"'}, json={"notes": "x"})  # 412
    client.post(f"{API}/auth/signup", json=signup_body(email=gym["email"]))  # duplicate
    client.get(f"{API}/no/such/{unique_email()}")
    inbox.wait_for(gym["email"])
    text = client.get("/metrics").text
    expected = [
        'http_requests_total{method="GET",path="/api/v1/customers/{customer_id}",'
        'status_code="200"}',
        'http_requests_total{method="GET",path="unmatched",status_code="404"}',
        "http_request_duration_seconds_bucket{",
        "http_requests_in_progress{",
        'gymledger_events_appended_total{type="CustomerRegistered"}',
        'gymledger_command_duration_seconds_bucket{command="RegisterCustomer"',
        'gymledger_command_conflicts_total{command="ChangeCustomer",reason="version"}',
        'gymledger_command_conflicts_total{command="RegisterGym",reason="duplicate"}',
        'gymledger_projection_position{projection="read_model"}',
        'gymledger_projection_lag_events{projection="read_model"}',
        'gymledger_projection_lag_seconds{projection="read_model"}',
        "gymledger_mail_sent_total",
        "gymledger_mail_outbox_pending",
        'gymledger_queue_depth{queue="mail"}',
        'gymledger_tasks_total{actor="send_mail",outcome="success"}',
    ]
    missing = [line for line in expected if line not in text]
    assert not missing, missing
    assert "no/such" not in text  # raw URLs never become labels


def test_security_headers_on_every_response(client: TestClient[Any]) -> None:
    for response in (client.get("/health"), client.get(f"{API}/nope"),
                     client.post(f"{API}/auth/signup", json={})):  # fmt: skip
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert response.headers["x-request-id"]


def test_cors_only_for_configured_origins(app_with: Any) -> None:
    api = app_with(cors_origins=("https://app.example.com",))
    preflight = {"Access-Control-Request-Method": "POST"}
    allowed = api.options(f"{API}/auth/signup",
                          headers={**preflight, "Origin": "https://app.example.com"})  # fmt: skip
    assert allowed.headers.get("access-control-allow-origin") == "https://app.example.com"
    other = api.get("/health", headers={"Origin": "https://evil.example.com"})
    assert "access-control-allow-origin" not in other.headers


def test_oversized_body_is_413_and_stores_nothing(client: TestClient[Any], settings: Any) -> None:
    body = signup_body(description="x" * (settings.max_body_bytes + 10))
    response = client.post(f"{API}/auth/signup", json=body)
    assert response.status_code == 413
    assert response.json()["status_code"] == 413
    login = client.post(f"{API}/auth/login",
                        data={"username": body["email"], "password": body["password"]})  # fmt: skip
    assert login.status_code == 400


def test_login_rate_limits(client: TestClient[Any], app_with: Any) -> None:
    body = signup_body()
    client.post(f"{API}/auth/signup", json=body)
    form = {"username": body["email"], "password": "wrong-password"}
    statuses = [client.post(f"{API}/auth/login", data=form).status_code for _ in range(11)]
    assert statuses[:10] == [400] * 10
    assert statuses[10] == 429
    limited = client.post(f"{API}/auth/login", data=form)
    assert int(limited.headers["retry-after"]) >= 1
    # Per client address, across many emails.
    strict = app_with(login_attempts_per_address=3, queue_namespace=f"strict-{unique_email()}")
    codes = [
        strict.post(f"{API}/auth/login",
                    data={"username": unique_email(), "password": "whatever1"}).status_code
        for _ in range(4)
    ]  # fmt: skip
    assert codes == [400, 400, 400, 429]


def test_unexpected_errors_carry_an_error_id_and_no_internals(
    client: TestClient[Any], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _, token = signup_and_login(client)

    async def broken(*_: Any) -> None:
        raise RuntimeError("SELECT secret FROM internals")

    monkeypatch.setattr("api.routes.gyms.get_gym", broken)
    with caplog.at_level(logging.ERROR, logger="gymledger.api"):
        response = client.get(f"{API}/gyms/me", headers=bearer(token))
    assert response.status_code == 500
    body = response.json()
    assert set(body) == {"detail", "status_code", "error_id"}
    assert "SELECT" not in response.text
    assert "Traceback" not in response.text
    record = next(r for r in caplog.records if getattr(r, "error_id", None) == body["error_id"])
    line = json.loads(JsonFormatter().format(record))
    assert line["error_id"] == body["error_id"]
    assert "RuntimeError" in line["exception"]
    assert line["level"] == "ERROR"


def test_log_lines_are_json_and_redact_secrets() -> None:
    record = logging.LogRecord("gymledger.test", logging.INFO, __file__, 1, "hello", None, None)
    record.password = "hunter22"
    record.method = "GET"
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "hello"
    assert line["password"] == "[redacted]"
    assert line["method"] == "GET"
    assert {"time", "level", "logger", "request_id"} <= set(line)


def test_configuration_errors_stop_start_up_with_every_problem() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("JWT_SECRET", "AUDIT_SIGNING_KEY")}
    env.update({"ENVIRONMENT": "production", "PORT": "eighty"})
    result = subprocess.run([sys.executable, "-m", "workers.cli", "migrate"], env=env,
                            capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert result.returncode == 2
    for problem in ("JWT_SECRET is required", "AUDIT_SIGNING_KEY is required", "PORT"):
        assert problem in result.stderr
    assert re.search(r"Traceback", result.stderr) is None


def test_the_projector_refuses_to_start_without_the_signing_key(tmp_path: Path) -> None:
    from infra.signing import generate_private_pem, key_ring, public_pem

    public = tmp_path / "public.pem"
    public.write_text(
        "".join(public_pem(k) for k in key_ring(generate_private_pem()).public.values())
    )
    env = {k: v for k, v in os.environ.items() if k != "AUDIT_SIGNING_KEY"}
    env |= {"ENVIRONMENT": "production", "AUDIT_PUBLIC_KEYS": str(public)}
    result = subprocess.run([sys.executable, "-m", "workers.projector"], env=env,
                            capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert result.returncode != 0
    assert "AUDIT_SIGNING_KEY is required" in result.stderr
