"""Revocation reaches every API process: two real uvicorn processes on the session's
database, a change made through one, and the other refusing the old token within 1 s.

Each process caches verified tokens and open gyms (api/auth.py, api/gym_cache.py);
the projector (the session fixture, in this process) announces the change and each
process drops its cached view. The old token is used on process 2 first, so the
refusal has to come through that announcement, not from an empty cache.
"""

import os
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest

from tests.conftest import signup_body
from tests.e2e.test_make_run import wait_healthy
from tests.processes import spawn, stop
from tests.smtp import free_port

REFUSED_WITHIN_SECONDS = 1.0
NEW_PASSWORD = "a fresh pass phrase"


@pytest.fixture(scope="module")
def two_apis(projector: None) -> Iterator[tuple[str, str]]:
    """Base URLs of two API processes sharing the session's database and Redis."""
    procs, bases = [], []
    try:
        for _ in range(2):
            port = free_port()
            args = ["uvicorn", "api.app:create_app", "--factory", "--host", "127.0.0.1"]
            procs.append(spawn([*args, "--port", str(port), "--no-access-log"], dict(os.environ)))
            bases.append(f"http://127.0.0.1:{port}")
        for base, proc in zip(bases, procs, strict=True):
            wait_healthy(base, proc)
        yield bases[0], bases[1]
    finally:
        for proc in procs:
            stop(proc)


def owner_on(base: str) -> tuple[dict[str, Any], dict[str, str]]:
    body = signup_body()
    with httpx.Client(base_url=f"{base}/api/v1", timeout=10) as http:
        assert http.post("/auth/signup", json=body).status_code == 201
        login = http.post(
            "/auth/login", data={"username": body["email"], "password": body["password"]}
        )
        assert login.status_code == 200, login.text
    return body, {"Authorization": f"Bearer {login.json()['access_token']}"}


def seconds_until_refused(url: str, headers: dict[str, str]) -> float:
    """Poll until `url` answers 401 for `headers`; fails once 1 s has passed without."""
    started = time.monotonic()
    with httpx.Client(timeout=5) as http:
        while True:
            status = http.get(url, headers=headers).status_code
            elapsed = time.monotonic() - started
            if status == 401:
                return elapsed
            assert status == 200, status
            assert elapsed < REFUSED_WITHIN_SECONDS, f"still accepted after {elapsed:.2f} s"
            time.sleep(0.01)


def test_a_password_change_on_one_process_ends_old_tokens_on_the_other(
    two_apis: tuple[str, str],
) -> None:
    first, second = two_apis
    body, owner = owner_on(first)
    for base in (first, second):  # both processes now hold the gym and the token
        assert httpx.get(f"{base}/api/v1/gyms/me", headers=owner).status_code == 200
    changed = httpx.post(
        f"{first}/api/v1/auth/password",
        headers=owner,
        json={"current_password": body["password"], "new_password": NEW_PASSWORD},
    )
    assert changed.status_code == 204, changed.text
    seconds_until_refused(f"{second}/api/v1/gyms/me", owner)
    login = httpx.post(
        f"{second}/api/v1/auth/login",
        data={"username": body["email"], "password": NEW_PASSWORD},
    )
    assert login.status_code == 200
    fresh = {"Authorization": f"Bearer {login.json()['access_token']}"}
    for base in (first, second):
        assert httpx.get(f"{base}/api/v1/gyms/me", headers=fresh).status_code == 200


def test_revoking_an_auditor_token_on_one_process_ends_it_on_the_other(
    two_apis: tuple[str, str],
) -> None:
    first, second = two_apis
    _, owner = owner_on(first)
    issued = httpx.post(
        f"{first}/api/v1/auth/auditor-tokens", headers=owner, json={"expires_in_seconds": 600}
    )
    assert issued.status_code == 201, issued.text
    token = issued.json()["access_token"]
    auditor = {"Authorization": f"Bearer {token}"}
    for base in (first, second):
        assert httpx.get(f"{base}/api/v1/events", headers=auditor).status_code == 200
    token_id = jwt.decode(token, options={"verify_signature": False})["jti"]
    revoked = httpx.delete(f"{first}/api/v1/auth/auditor-tokens/{token_id}", headers=owner)
    assert revoked.status_code == 204, revoked.text
    seconds_until_refused(f"{second}/api/v1/events", auditor)
    assert httpx.get(f"{second}/api/v1/gyms/me", headers=owner).status_code == 200


def test_closing_a_gym_on_one_process_ends_its_tokens_on_the_other(
    two_apis: tuple[str, str],
) -> None:
    first, second = two_apis
    _, owner = owner_on(first)
    for base in (first, second):
        assert httpx.get(f"{base}/api/v1/gyms/me", headers=owner).status_code == 200
    assert httpx.delete(f"{first}/api/v1/gyms/me", headers=owner).status_code == 204
    seconds_until_refused(f"{second}/api/v1/gyms/me", owner)
